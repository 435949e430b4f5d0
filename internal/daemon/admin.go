package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// DefaultAdminAddr is where the admin HTTP endpoints (/metrics, /healthz,
// /readyz) listen unless --admin-addr says otherwise.
const DefaultAdminAddr = "127.0.0.1:7301"

// adminServer serves the admin HTTP endpoints.
type adminServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// startAdmin listens on f.AdminAddr and serves h. An empty address disables
// the endpoints (nil, nil). When the address is the default, not given on the
// command line, and already taken (as by another node on the same host), the
// node runs without them and says so; an address given explicitly must bind.
func startAdmin(f Flags, h http.Handler, log *slog.Logger) (*adminServer, error) {
	if f.AdminAddr == "" {
		log.Info("admin HTTP endpoints disabled (--admin-addr is empty)")
		return nil, nil
	}
	lis, err := net.Listen("tcp", f.AdminAddr)
	if err != nil {
		if !f.AdminAddrSet && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("admin HTTP endpoints disabled: the default address is taken; set --admin-addr", "addr", f.AdminAddr, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("--admin-addr %s: %w", f.AdminAddr, err)
	}
	a := &adminServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		addr: lis.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin HTTP server stopped", "err", err)
		}
	}()
	log.Info("admin HTTP endpoints listening", "addr", a.addr, "paths", "/metrics /healthz /readyz")
	return a, nil
}

// shutdown stops the server, letting a scrape in progress finish until ctx
// ends. Safe on a nil server.
func (a *adminServer) shutdown(ctx context.Context) {
	if a == nil {
		return
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
	}
	<-a.done
}
