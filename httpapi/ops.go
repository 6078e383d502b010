package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

type statusResponse struct {
	Status string `json:"status" example:"ok"`
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusOK, statusResponse{Status: "ok"})
}

// handleReadyz answers 200 while the storage answers within a second.
func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.writeError(w, r, &keyward.Error{Code: keyward.CodeStorageUnavailable, Message: "The storage does not answer; retry shortly.", Err: err})
		return
	}
	respond(w, http.StatusOK, statusResponse{Status: "ok"})
}

func (s *server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}
