package kernels

import "math"

// Adam is one step's constants of the Adam optimiser, in float32: the
// decay rates β1 and β2, 1-β1 and 1-β2, the inverse bias corrections
// 1/(1-β1ᵗ) and 1/(1-β2ᵗ), ε, -η (minus the step size), and the L2
// penalty (used if L2Used).
type Adam struct {
	Beta1, Beta2, OneMinusBeta1, OneMinusBeta2  float32
	InvCorrection1, InvCorrection2, Eps, NegEta float32
	L2                                          float32
	L2Used                                      bool
}

// AdamUpdate applies one Adam step to the weights w from their gradient g
// and moments m and v (all of one length), then zeroes g. Each element is
// this sequence of float32 operations, each rounded once, in every kernel
// (the vector ones compute 8 elements at a time, the same operations):
//
//	g' = g + w·L2 (if L2Used)
//	m  = g'·(1-β1) + m·β1
//	v  = (g'·g')·(1-β2) + v·β2
//	w  = w + ((m·c1)·(-η)) / (sqrt(v·c2) + ε)
//
// which is what Gorgonia's AdamSolver computes, tensor operation by tensor
// operation.
func AdamUpdate(w, g, m, v []float32, k *Adam) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	done := 0
	if kn := current(); kn.adam != nil {
		done = kn.adam(w, g, m, v, k)
	}
	adamGo(w[done:], g[done:], m[done:], v[done:], k)
}

// adamGo is AdamUpdate in Go, element by element. (Built with
// GOAMD64=v3, the compiler may fuse a multiply and an add here into one
// FMA, as it may in Gorgonia's own loops; TestAdamKernels would say so.)
func adamGo(w, g, m, v []float32, k *Adam) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i, wi := range w {
		gi := g[i]
		if k.L2Used {
			gi += wi * k.L2
		}
		t1 := gi * k.OneMinusBeta1
		gg := gi * gi
		gg *= k.OneMinusBeta2
		t1 += m[i] * k.Beta1
		gg += v[i] * k.Beta2
		m[i], v[i] = t1, gg
		mh := t1 * k.InvCorrection1
		vh := gg * k.InvCorrection2
		vh = float32(math.Sqrt(float64(vh))) // correctly rounded: as SQRTPS
		vh += k.Eps
		mh *= k.NegEta
		mh /= vh
		w[i] = wi + mh
		g[i] = 0
	}
}
