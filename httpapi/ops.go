package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/keyward/keyward"
)

type statusResponse struct {
	Status string `json:"status" example:"ok"`
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if err := s.respond(w, http.StatusOK, statusResponse{Status: "ok"}); err != nil {
		s.writeError(w, r, err)
	}
}

// handleReadyz answers 200 while the storage answers within the storage
// timeout. The answer does not say why it does not: the store's message
// names the database's host, which is not for an unauthenticated caller.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.storageTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.writeError(w, r, &keyward.Error{Code: keyward.CodeStorageUnavailable,
			Message: fmt.Sprintf("The storage cannot be reached, or did not answer within %s; retry shortly.", s.storageTimeout), Err: err})
		return
	}
	if err := s.respond(w, http.StatusOK, statusResponse{Status: "ok"}); err != nil {
		s.writeError(w, r, err)
	}
}

// handleMetrics serves Config.Metrics, or answers 404 without them.
func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.writeError(w, r, keyward.Errorf(keyward.CodeNotFound, "This server serves no metrics."))
		return
	}
	s.metrics.ServeHTTP(w, r)
}

func (s *server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}
