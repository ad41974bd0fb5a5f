package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/adtech/scorer/internal/serve"
	"github.com/adtech/scorer/readers/store"
)

// ServeTokensEnv adds bearer tokens to serve.tokens_file (comma-separated).
const ServeTokensEnv = "SCORER_SERVE_TOKENS"

// Serve runs scorer serve until ctx ends (SIGTERM): it listens on
// serve.addr (ready is called with the address once it does), queues
// requests into queue.dir of the input store and scores online with the
// configured model. On the end of ctx it stops taking calls, answers those
// in flight within serve.shutdown_timeout (every request acknowledged is
// in a queue file; a call refused is not), writes what waits, and returns.
func (a *App) Serve(ctx context.Context, ready func(addr string)) error {
	cfg := a.cfg.Serve
	tokens, err := serveTokens(cfg.TokensFile)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		return UsageError{fmt.Errorf("serve: no bearer token: set serve.tokens_file or %s", ServeTokensEnv)}
	}
	in, err := store.Open(ctx, a.cfg.Input)
	if err != nil {
		return UsageError{fmt.Errorf("input: %w", err)}
	}
	bu, err := a.LoadModel(ctx, a.cfg.Model)
	if err != nil {
		return err
	}
	instance := cfg.Instance
	if instance == "" {
		if instance, err = os.Hostname(); err != nil {
			return fmt.Errorf("serve: instance: %w", err)
		}
	}
	if len(a.cfg.Queue.IDColumns) == 0 {
		return UsageError{errors.New("serve: queue.id_columns is empty: requests need an id")}
	}
	s, err := serve.New(ctx, serve.Options{
		Bundle: bu, Input: in, QueueDir: a.cfg.Queue.Dir, IDColumn: a.cfg.Queue.IDColumns[0], Instance: instance,
		Tokens: tokens, MaxBodyBytes: cfg.MaxBodyBytes, MaxItems: cfg.MaxItems,
		BatchMaxItems: cfg.BatchMaxItems, BatchMaxWait: cfg.BatchMaxWait, Log: a.log, Now: a.now,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return UsageError{fmt.Errorf("serve: listen: %w", err)}
	}
	srv := &http.Server{
		Handler: s.Handler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	a.log.Info("serving", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "model", bu.Name, "model_version", bu.Version,
		"queue", in.URI(a.cfg.Queue.Dir+"/"), "instance", instance)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: answering the calls in flight", "timeout", cfg.ShutdownTimeout)
	s.Drain()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdown)
	s.Close() // the queue written: nothing acknowledged is left unwritten
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// serveTokens reads the bearer tokens of the file (if any) and of the
// environment.
func serveTokens(file string) ([]string, error) {
	var tokens []string
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, UsageError{fmt.Errorf("serve.tokens_file: %w", err)}
		}
		defer func() { _ = f.Close() }()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if t := strings.TrimSpace(sc.Text()); t != "" && !strings.HasPrefix(t, "#") {
				tokens = append(tokens, t)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read serve.tokens_file: %w", err)
		}
	}
	for _, t := range strings.Split(os.Getenv(ServeTokensEnv), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens, nil
}
