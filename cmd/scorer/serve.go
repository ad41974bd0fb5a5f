package main

import (
	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the REST API: queue prediction requests durably, score online",
		Long: `Serve the REST API on serve.addr until SIGTERM or SIGINT (docs/serve.md):

  POST /v1/requests  a JSON array or JSON Lines of requests. Each is read
                     as scorer run will read it from the queue (the model's
                     input columns; queue.id_columns[0] required); the good
                     ones are appended to a queue file of <input>/<queue.dir>
                     and the call is answered once that file is written
                     (fsync locally, a completed upload on GCS). A request
                     id is queued once: posting it again answers "duplicate".
                     Bad items are answered with their column and reason.
  POST /v1/predict   scores requests now, as the batch path scores them (the
                     same readers, features and model: the same scores).
  GET  /healthz, /readyz, /metrics, /openapi.json

/v1/ needs "Authorization: Bearer <token>", a token of serve.tokens_file (one
a line) or of SCORER_SERVE_TOKENS (comma-separated); without any token the
server does not start. serve.tls_cert and serve.tls_key serve HTTPS.

On SIGTERM, /readyz answers 503 and new calls are refused with 503 (nothing
of them queued); calls in flight are answered within serve.shutdown_timeout,
and every request acknowledged is in a queue file before the process exits.`,
		Example: `  SCORER_SERVE_TOKENS=dev-token scorer serve
  curl -H 'Authorization: Bearer dev-token' --data-binary @testdata/store/queue/requests-2020-09-02T00.jsonl localhost:8080/v1/requests`,
		Args: cobra.NoArgs,
	}
	c.stringFlag(cmd, "addr", "", "address to listen on (config: serve.addr)", func(c *app.Config) *string { return &c.Serve.Addr })
	c.stringFlag(cmd, "tokens-file", "", "file of bearer tokens, one a line (config: serve.tokens_file)", func(c *app.Config) *string { return &c.Serve.TokensFile })
	c.stringFlag(cmd, "input", "", "input store URI: requests go to its queue.dir (config: input)", func(c *app.Config) *string { return &c.Input })
	c.stringFlag(cmd, "model", "", "model bundle URI, or models:/<name>@current (config: model)", func(c *app.Config) *string { return &c.Model })
	c.stringFlag(cmd, "registry", "", "model registry URI, for models:/ references (config: registry)", func(c *app.Config) *string { return &c.Registry })
	exitCodes(cmd, map[int]string{
		app.ExitOK:    "stopped by a signal; every acknowledged request is queued",
		app.ExitRetry: "failed (e.g. the input store): safe to restart",
		app.ExitUsage: "configuration error (no token, cannot listen, bad model): fix it first",
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		return c.newApp(cfg).Serve(cmd.Context(), nil)
	}
	return cmd
}
