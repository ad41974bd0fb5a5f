package bundle

import (
	"fmt"
	"slices"

	"github.com/adtech/scorer/features"
)

// prepareFeatures gives the feature spec decoded from model.yaml the
// defaults a spec file gets (features.Spec.SetDefaults: a hand-written
// model.yaml may leave out column, as a spec file may) and checks it with
// its statistics as features.NewPipeline does, so that a spec that is
// invalid, or that its statistics do not cover, makes the bundle invalid
// at load, named with the feature, instead of failing a run later. A
// bundle without a feature spec is left as it is (it can be compiled and
// scored from features.Batch, not from input records).
func (bu *Bundle) prepareFeatures() error {
	bu.Features.SetDefaults()
	return checkFeatures(bu.Features, bu.Stats)
}

// checkFeatures is the check of prepareFeatures, on a spec with its
// defaults. Errors wrap ErrInvalid and features.ErrSpec.
func checkFeatures(spec features.Spec, stats features.Stats) error {
	if spec.Label == "" && len(spec.Features) == 0 {
		return nil
	}
	if _, err := features.NewPipeline(spec, stats); err != nil {
		return fmt.Errorf("%w: features: %w", ErrInvalid, err)
	}
	return nil
}

// checkFeaturesToSave checks the feature spec that Save is about to write
// as Load will read it back (with its defaults), leaving the bundle's own
// spec as it is.
func (bu *Bundle) checkFeaturesToSave() error {
	spec := bu.Features
	spec.Features = slices.Clone(spec.Features)
	spec.SetDefaults()
	return checkFeatures(spec, bu.Stats)
}
