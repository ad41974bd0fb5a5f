package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/scoring/registry"
)

// ErrRefused is a promotion the evaluation gate refused (exit code 6).
var ErrRefused = errors.New("promotion refused")

// ModelVersion is one version of a model in the registry, with its latest
// evaluation on all rows of a labelled partition, if any.
type ModelVersion struct {
	registry.Version
	Evaluation *jobs.EvalSummary `json:"evaluation,omitempty"`
}

// ModelListing is one model of the registry.
type ModelListing struct {
	Name     string           `json:"name"`
	Current  *registry.Alias  `json:"current"`
	Versions []ModelVersion   `json:"versions"`
	Events   []registry.Event `json:"events"`
}

// AddModel copies the bundle at uri into the registry.
func (a *App) AddModel(ctx context.Context, uri string) (name, version string, err error) {
	reg, err := a.openRegistry(ctx)
	if err != nil {
		return "", "", err
	}
	bu, err := LoadBundle(ctx, uri)
	if err != nil {
		return "", "", err
	}
	if err := reg.Add(ctx, bu); err != nil {
		if errors.Is(err, registry.ErrVersionExists) {
			return "", "", fmt.Errorf("%w: add %s: %w", jobs.ErrConfig, uri, err)
		}
		return "", "", fmt.Errorf("add %s: %w", uri, err)
	}
	a.log.Info("model added", "name", bu.Name, "version", bu.Version, "registry", a.cfg.Registry)
	return bu.Name, bu.Version, nil
}

// ListModels lists the registry's models (or the one named), their
// versions, current alias and events, with each version's latest
// evaluation from the evaluations table.
func (a *App) ListModels(ctx context.Context, name string) ([]ModelListing, error) {
	reg, err := a.openRegistry(ctx)
	if err != nil {
		return nil, err
	}
	names := []string{name}
	if name == "" {
		if names, err = reg.Models(ctx); err != nil {
			return nil, err
		}
	}
	evals, err := a.evaluations(ctx)
	if err != nil {
		a.log.Warn("cannot read the evaluations table: listing without", "err", err)
	}
	var out []ModelListing
	for _, n := range names {
		l := ModelListing{Name: n}
		if l.Current, err = reg.Current(ctx, n); err != nil {
			return nil, registryError("list", err)
		}
		vs, err := reg.Versions(ctx, n)
		if err != nil {
			return nil, registryError("list", err)
		}
		for _, v := range vs {
			mv := ModelVersion{Version: v}
			for i := range evals {
				e := &evals[i]
				if e.ModelName == n && e.ModelVersion == v.Version && (mv.Evaluation == nil || e.EvaluatedAt.After(mv.Evaluation.EvaluatedAt)) {
					mv.Evaluation = e
				}
			}
			l.Versions = append(l.Versions, mv)
		}
		if l.Events, err = reg.Events(ctx, n); err != nil {
			return nil, err
		}
		if l.Events == nil {
			l.Events = []registry.Event{}
		}
		out = append(out, l)
	}
	return out, nil
}

// evaluations reads every evaluation on all rows from the evaluations
// table; none when the table does not exist yet.
func (a *App) evaluations(ctx context.Context) ([]jobs.EvalSummary, error) {
	out, err := a.openOutput(ctx)
	if err != nil {
		return nil, err
	}
	return jobs.ReadEvaluations(ctx, out, a.cfg.Evaluate.Table)
}

// PromoteRequest asks to make a version the current one.
type PromoteRequest struct {
	Name, Version string
	// Force promotes even when the gate refuses (recorded in the event).
	Force  bool
	Reason string
	By     string // default: user@host of the process
}

// Gate is what the evaluation gate compared: the current and the
// candidate version on the same partition, the latest evaluated that has
// both.
type Gate struct {
	Table       string            `json:"scored_table,omitempty"`
	Partition   string            `json:"scored_partition,omitempty"`
	EvaluatedAt time.Time         `json:"evaluated_at,omitzero"`
	Current     *jobs.EvalSummary `json:"current,omitempty"`
	Candidate   *jobs.EvalSummary `json:"candidate,omitempty"`
	MaxAUCDrop  float64           `json:"max_auc_drop"`
	MaxLLRise   float64           `json:"max_log_loss_rise"`
	// Refused says why the gate refused; empty if it passed.
	Refused string `json:"refused,omitempty"`
	Forced  bool   `json:"forced,omitempty"`
}

// Promotion is the outcome of Promote.
type Promotion struct {
	Alias *registry.Alias `json:"alias"`
	Gate  *Gate           `json:"gate"`
}

// Promote makes a version current, unless the evaluation gate refuses it
// (ErrRefused, exit code 6) and Force is not set.
func (a *App) Promote(ctx context.Context, r PromoteRequest) (*Promotion, error) {
	reg, err := a.openRegistry(ctx)
	if err != nil {
		return nil, err
	}
	// The version must exist before anything is judged: an unknown one is
	// the caller's mistake (exit code 2), not a refusal.
	vs, err := reg.Versions(ctx, r.Name)
	if err != nil {
		return nil, registryError("promote", err)
	}
	if !slices.ContainsFunc(vs, func(v registry.Version) bool { return v.Version == r.Version }) {
		return nil, fmt.Errorf("%w: promote: %w: model %q has no version %q in %s", jobs.ErrConfig, registry.ErrNotFound, r.Name, r.Version, a.cfg.Registry)
	}
	cur, err := reg.Current(ctx, r.Name)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Version == r.Version {
		return nil, UsageError{fmt.Errorf("promote: %s %s is already current", r.Name, r.Version)}
	}
	gate := &Gate{MaxAUCDrop: a.cfg.Promote.MaxAUCDrop, MaxLLRise: a.cfg.Promote.MaxLogLossRise}
	if cur != nil { // the first promotion has nothing to compare with
		evals, err := a.evaluations(ctx)
		if err != nil {
			return nil, fmt.Errorf("promote: read the evaluations: %w", err)
		}
		a.judge(gate, evals, r.Name, cur.Version, r.Version)
	}
	if gate.Refused != "" {
		if !r.Force {
			return &Promotion{Gate: gate}, fmt.Errorf("%w: %s %s: %s (--force promotes anyway, and records it)", ErrRefused, r.Name, r.Version, gate.Refused)
		}
		gate.Forced = true
		a.log.Warn("promotion forced past the evaluation gate", "name", r.Name, "version", r.Version, "refused", gate.Refused)
	}
	evidence, err := json.Marshal(gate)
	if err != nil {
		return nil, err
	}
	alias, err := reg.Promote(ctx, r.Name, r.Version, registry.Event{
		By: by(r.By), Reason: r.Reason, Forced: gate.Forced, Evidence: evidence,
	})
	if err != nil {
		return nil, registryError("promote", err)
	}
	a.log.Info("promoted", "name", r.Name, "version", r.Version, "previous", alias.Previous)
	return &Promotion{Alias: alias, Gate: gate}, nil
}

// judge fills gate from the latest evaluation (by evaluated_at) of a
// partition on which both versions were evaluated with labelled rows.
func (a *App) judge(gate *Gate, evals []jobs.EvalSummary, name, current, candidate string) {
	type part struct{ table, partition string }
	byPart := map[part][2]*jobs.EvalSummary{}
	for i := range evals {
		e := &evals[i]
		if e.ModelName != name || e.LabelledRows == 0 {
			continue
		}
		k := part{e.Table, e.Partition}
		pair := byPart[k]
		switch e.ModelVersion {
		case current:
			pair[0] = e
		case candidate:
			pair[1] = e
		default:
			continue
		}
		byPart[k] = pair
	}
	var best [2]*jobs.EvalSummary
	for _, pair := range byPart {
		if pair[0] != nil && pair[1] != nil && (best[0] == nil || pair[0].EvaluatedAt.After(best[0].EvaluatedAt)) {
			best = pair
		}
	}
	if best[0] == nil {
		gate.Refused = fmt.Sprintf("no evaluation has both the current version %s and %s on labelled rows: "+
			"score a partition with %s as a challenger (config: challengers) and run scorer evaluate", current, candidate, candidate)
		return
	}
	gate.Table, gate.Partition, gate.EvaluatedAt = best[0].Table, best[0].Partition, best[0].EvaluatedAt
	gate.Current, gate.Candidate = best[0], best[1]
	cu, ca := best[0], best[1]
	var why []string
	switch {
	case math.IsNaN(cu.AUC) || math.IsNaN(ca.AUC):
		why = append(why, "AUC is undefined on that partition (one class only)")
	case cu.AUC-ca.AUC > gate.MaxAUCDrop:
		why = append(why, fmt.Sprintf("AUC %.4f is %.4f below the current %.4f (promote.max_auc_drop %g)", ca.AUC, cu.AUC-ca.AUC, cu.AUC, gate.MaxAUCDrop))
	}
	if ca.LogLoss-cu.LogLoss > gate.MaxLLRise {
		why = append(why, fmt.Sprintf("log loss %.4f is %.4f above the current %.4f (promote.max_log_loss_rise %g)", ca.LogLoss, ca.LogLoss-cu.LogLoss, cu.LogLoss, gate.MaxLLRise))
	}
	if len(why) > 0 {
		gate.Refused = fmt.Sprintf("on %s/%s (evaluated %s): %s", gate.Table, gate.Partition, gate.EvaluatedAt.Format(time.RFC3339), strings.Join(why, "; "))
	}
}

// RollbackRequest asks to make the previous current version current again.
type RollbackRequest struct {
	Name, Reason, By string
}

// Rollback makes the version that was current before the present one
// current again.
func (a *App) Rollback(ctx context.Context, r RollbackRequest) (*registry.Alias, error) {
	reg, err := a.openRegistry(ctx)
	if err != nil {
		return nil, err
	}
	alias, err := reg.Rollback(ctx, r.Name, registry.Event{By: by(r.By), Reason: r.Reason})
	if err != nil {
		return nil, registryError("rollback", err)
	}
	a.log.Info("rolled back", "name", r.Name, "version", alias.Version, "from", alias.Previous)
	return alias, nil
}

// registryError maps the registry's errors to exit codes: a missing model
// or version is the caller's to fix (2); a lost race is safe to retry (1).
func registryError(op string, err error) error {
	if errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrNoPrevious) || errors.Is(err, registry.ErrInvalidRef) {
		return fmt.Errorf("%w: %s: %w", jobs.ErrConfig, op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// by names who acts: the flag, else user@host.
func by(flag string) string {
	if flag != "" {
		return flag
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
