package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownGrace is how long Stop lets a scrape in progress finish before
// closing its connection: a scrape takes milliseconds.
const shutdownGrace = 2 * time.Second

// Server serves a metrics handler over HTTP.
type Server struct {
	srv     *http.Server
	addr    net.Addr
	done    chan struct{} // closed when the serving goroutine returns
	err     error         // what it returned, if not a shutdown
	once    sync.Once
	stopErr error
	unwatch func() bool // stops watching the context
}

// Serve listens on addr (host:port; port 0 picks one, see Addr) and serves
// h at /metrics until Stop is called or ctx ends. It listens before it
// returns, so an address in use is an error now, not a log line later.
// Bind to loopback or a private interface: the metrics are not secret but
// the endpoint has no authentication.
func Serve(ctx context.Context, addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	s := &Server{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	s.unwatch = context.AfterFunc(ctx, func() { s.shutdown() })
	return s, nil
}

// Addr is the address the server listens on, with the port it got.
func (s *Server) Addr() string { return s.addr.String() }

// Stop shuts the server down, letting a scrape in progress finish for a
// moment, and returns once it no longer listens. It may be called more
// than once, and after ctx ended; it returns the serving error, if any.
func (s *Server) Stop() error {
	s.unwatch()
	return s.shutdown()
}

func (s *Server) shutdown() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close() // a scrape that would not finish
		}
		<-s.done
		if s.err != nil {
			s.stopErr = fmt.Errorf("metrics server on %s: %w", s.addr, s.err)
		}
	})
	return s.stopErr
}
