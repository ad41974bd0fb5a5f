package registry

import (
	"context"

	"github.com/adtech/scorer/scoring/bundle"
)

// Keys, for tests that look at the store.
var (
	AliasKey = aliasKey
	EventKey = eventKey
)

// AddStopAfterWeights is Add stopped between its two writes, as by a crash:
// the weights are written, model.yaml is not.
func AddStopAfterWeights(ctx context.Context, r *Registry, bu *bundle.Bundle) error {
	return r.add(ctx, bu, true)
}

// PromoteStopBeforeEvent is Promote stopped between its two writes, as by a
// crash: the alias is swapped, the event's record is not written.
func PromoteStopBeforeEvent(ctx context.Context, r *Registry, name, version string, ev Event) (*Alias, error) {
	return r.move(ctx, "promote", "promoting", ActionPromote, name, ev, false, func(*Alias) (string, error) {
		return version, nil
	})
}
