package scoring

import (
	"gorgonia.org/gorgonia"

	"github.com/adtech/scorer/scoring/kernels"
)

// Gorgonia's own matrix products (the training graph's, forward and
// backward) run on the tile kernels (kernels.Training), or on OpenBLAS
// with the openblas build tag.
func init() {
	if b := kernels.OpenBLAS(); b != nil {
		gorgonia.Use(b)
		return
	}
	gorgonia.Use(kernels.Training{})
}
