package dashboard

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/keyward/keyward"
)

// sessionStore is scs's store on Keyward's own database
// (keyward.AccountStore), so that every node shares the sessions. A
// session is stored by the SHA-256 of its token: the cookie's value is
// never in the database.
type sessionStore struct {
	s   keyward.AccountStore
	now keyward.Clock
}

var _ scs.CtxStore = sessionStore{}

func (st sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return st.s.FindSession(ctx, sha256.Sum256([]byte(token)), st.now())
}

func (st sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	return st.s.CommitSession(ctx, sha256.Sum256([]byte(token)), b, expiry)
}

func (st sessionStore) DeleteCtx(ctx context.Context, token string) error {
	return st.s.DeleteSession(ctx, sha256.Sum256([]byte(token)))
}

func (st sessionStore) Find(token string) ([]byte, bool, error) {
	return st.FindCtx(context.Background(), token)
}

func (st sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return st.CommitCtx(context.Background(), token, b, expiry)
}

func (st sessionStore) Delete(token string) error {
	return st.DeleteCtx(context.Background(), token)
}
