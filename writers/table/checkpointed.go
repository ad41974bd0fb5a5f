package table

import (
	"context"
	"fmt"
	"maps"
)

// Checkpointed returns a job's entries in the ledger of the latest
// checkpoint of the commit log, by key: the inputs that done runs of the
// job consumed up to the checkpoint (where several generations of a key
// were consumed, the latest commit's). Empty when there is no checkpoint.
//
// Retention uses it: an input whose entry is here with the generation it
// has now was consumed by a done run, and the ledger no longer needs the
// commit records since the checkpoint to know it.
func (p *Publisher) Checkpointed(ctx context.Context, job string) (map[string]InputFile, error) {
	cp, err := p.latestCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpointed ledger %s: %w", job, err)
	}
	if cp == nil || cp.Ledger[job] == nil {
		return map[string]InputFile{}, nil
	}
	return maps.Clone(cp.Ledger[job]), nil
}
