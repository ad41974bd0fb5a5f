package scoring

import (
	"gorgonia.org/gorgonia"

	"github.com/adtech/scorer/scoring/kernels"
)

// With the openblas build tag, Gorgonia's own matrix products (the training
// graph's) use OpenBLAS too.
func init() {
	if b := kernels.OpenBLAS(); b != nil {
		gorgonia.Use(b)
	}
}
