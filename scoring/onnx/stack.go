package onnx

import (
	"fmt"
	"slices"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring/bundle"
)

// stackTables rewrites the input layer that torch.onnx.export writes for
// a model with one nn.Embedding per feature,
//
//	ids_i = Gather(x, i, axis=1); e_i = Gather(table_i, ids_i); Concat(..., e_0, ..., e_m, ...)
//
// into one lookup in the tables stacked (the layout scorer's own models
// use, and the one the fused gather reads fastest, all of a row's lookups
// at once):
//
//	rows = Gather(x, [0..m], axis=1) + offsets; e = Reshape(Gather(stacked, rows), [-1, m·E]); Concat(..., e, ...)
//
// and likewise the wide part of such a model, a chain of Adds of scalar
// lookups (tables [V_i, 1] or [V_i]), into one lookup and a ReduceSum that
// scoring computes as one op:
//
//	s = Add(Add(Add(b, w_0), w_1), w_2)  ->  s = Add(b, ReduceSum(Gather(stacked, rows), axes=[1]))
//
// It applies only where the lookups are the same: x is an integer graph
// input, every table has the same width and is read by this lookup only,
// every lookup's output feeds only the Concat (or the Add), and every
// feature's cardinality fits its table (so no index can reach a
// neighbouring table). Concatenations do not change; sums change by float
// rounding only (they are added in another order, in float64). The
// per-feature tables become one weight.
func stackTables(gr *bundle.Graph, weights map[string]*bundle.Param, spec features.Spec, cards []int) {
	producer := map[string]int{}
	uses := map[string]int{}
	for i, n := range gr.Nodes {
		for _, o := range n.Outputs {
			producer[o] = i
		}
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	uses[gr.Output.Name]++
	// The cardinality of each column of each integer graph input.
	index := map[string]int{}
	for _, f := range spec.Features {
		if f.Kind != features.Numeric {
			index[f.Name] = len(index)
		}
	}
	colCard := map[string][]int{}
	for _, in := range gr.Inputs {
		if in.DType == bundle.Float32 || len(in.Dims) != 1 {
			continue
		}
		for _, f := range in.Features {
			colCard[in.Name] = append(colCard[in.Name], cards[index[f]])
		}
	}
	// constInt is a scalar integer constant's value.
	constInt := func(name string) (int64, bool) {
		if c, ok := gr.Constants[name]; ok && len(c.Values) == 1 && len(c.Shape) == 0 {
			return c.Values[0], true
		}
		if i, ok := producer[name]; ok && gr.Nodes[i].Op == "Constant" {
			if t := gr.Nodes[i].Tensors["value"]; t != "" {
				if c, ok := gr.Constants[t]; ok && len(c.Values) == 1 && len(c.Shape) == 0 {
					return c.Values[0], true
				}
			}
		}
		return 0, false
	}
	// lookup describes concat input name if it is one table lookup of one
	// column of an integer input.
	type lookup struct {
		gather      int // node index
		table, src  string
		col         int
		rows, width int
		rank        int // of the table: 2, or 1 for a [V] table
	}
	lookupOf := func(name string) (lookup, bool) {
		gi, ok := producer[name]
		if !ok || uses[name] != 1 {
			return lookup{}, false
		}
		g := gr.Nodes[gi]
		if g.Op != "Gather" || g.Int("axis", 0) != 0 || len(g.Inputs) != 2 {
			return lookup{}, false
		}
		w, ok := weights[g.Inputs[0]]
		if !ok || (len(w.Shape) != 2 && len(w.Shape) != 1) || uses[g.Inputs[0]] != 1 {
			return lookup{}, false
		}
		width := 1
		if len(w.Shape) == 2 {
			width = w.Shape[1]
		}
		pi, ok := producer[g.Inputs[1]] // the column may be read by others too (a wide part)
		if !ok {
			return lookup{}, false
		}
		p := gr.Nodes[pi]
		if p.Op != "Gather" || p.Int("axis", 0) != 1 || len(p.Inputs) != 2 || colCard[p.Inputs[0]] == nil {
			return lookup{}, false
		}
		col, ok := constInt(p.Inputs[1])
		cc := colCard[p.Inputs[0]]
		if !ok || col < -int64(len(cc)) || col >= int64(len(cc)) {
			return lookup{}, false
		}
		if col < 0 {
			col += int64(len(cc))
		}
		if cc[col] > w.Shape[0] {
			return lookup{}, false // refused when compiled, with the feature named
		}
		return lookup{gather: gi, table: g.Inputs[0], src: p.Inputs[0], col: int(col), rows: w.Shape[0], width: width, rank: len(w.Shape)}, true
	}

	var nodes []bundle.Node
	drop := map[int]bool{}
	insert := map[int][]bundle.Node{} // before node i
	if gr.Constants == nil {
		gr.Constants = map[string]bundle.IntTensor{}
	}
	// lookups stacks the run's tables into one weight and returns the
	// nodes of the one lookup in it: base.emb = Gather(stacked,
	// Gather(src, cols, axis=1) + offsets), [batch, len(run), width...].
	lookups := func(base string, run []lookup) []bundle.Node {
		shape := []int{0, run[0].width}
		if run[0].rank == 1 {
			shape = []int{0}
		}
		stacked := &bundle.Param{Shape: shape}
		cols := bundle.IntTensor{Shape: []int{len(run)}}
		offsets := bundle.IntTensor{Shape: []int{len(run)}}
		for _, l := range run {
			offsets.Values = append(offsets.Values, int64(stacked.Shape[0]))
			cols.Values = append(cols.Values, int64(l.col))
			stacked.Data = append(stacked.Data, weights[l.table].Data...)
			stacked.Shape[0] += l.rows
			delete(weights, l.table)
			drop[l.gather] = true // the column picks go with prune if nothing else reads them
		}
		weights[base+".weight"] = stacked
		gr.Constants[base+".cols"] = cols
		gr.Constants[base+".offsets"] = offsets
		return []bundle.Node{
			{Name: base + "/Gather_columns", Op: "Gather", Inputs: []string{run[0].src, base + ".cols"}, Outputs: []string{base + ".ids"}, Ints: map[string][]int64{"axis": {1}}},
			{Name: base + "/Add_offsets", Op: "Add", Inputs: []string{base + ".ids", base + ".offsets"}, Outputs: []string{base + ".rows"}},
			{Name: base + "/Gather", Op: "Gather", Inputs: []string{base + ".weight", base + ".rows"}, Outputs: []string{base + ".emb"}},
		}
	}
	for ci := range gr.Nodes {
		n := &gr.Nodes[ci]
		if n.Op != "Concat" || (n.Int("axis", 0) != 1 && n.Int("axis", 0) != -1) {
			continue
		}
		var inputs []string
		for i := 0; i < len(n.Inputs); {
			first, ok := lookupOf(n.Inputs[i])
			ok = ok && first.rank == 2
			j := i + 1
			run := []lookup{first}
			for ok && j < len(n.Inputs) {
				l, ok2 := lookupOf(n.Inputs[j])
				if !ok2 || l.src != first.src || l.width != first.width || l.rank != 2 {
					break
				}
				run = append(run, l)
				j++
			}
			if !ok || len(run) < 2 {
				inputs = append(inputs, n.Inputs[i])
				i++
				continue
			}
			base := fmt.Sprintf("%s/stacked_%d", n.Outputs[0], i) // output names are unique
			gr.Constants[base+".shape"] = bundle.IntTensor{Shape: []int{2}, Values: []int64{-1, int64(len(run) * first.width)}}
			insert[ci] = append(insert[ci], lookups(base, run)...)
			insert[ci] = append(insert[ci], bundle.Node{Name: base + "/Reshape", Op: "Reshape", Inputs: []string{base + ".emb", base + ".shape"}, Outputs: []string{base}})
			inputs = append(inputs, base)
			i = j
		}
		n.Inputs = inputs
	}
	// Sums of scalar lookups (a wide part: Add(..., Gather(w_i, ids_i))
	// chained over the features) become one lookup and a ReduceSum.
	chained := map[int]bool{}
	for ai := len(gr.Nodes) - 1; ai >= 0; ai-- {
		if chained[ai] || drop[ai] {
			continue
		}
		var run []lookup
		var links []int
		base := ""
		for at := ai; ; {
			a := gr.Nodes[at]
			if a.Op != "Add" || len(a.Inputs) != 2 || (at != ai && uses[a.Outputs[0]] != 1) {
				break
			}
			l, li := lookup{}, -1
			for k, in := range a.Inputs {
				if x, ok := lookupOf(in); ok && x.width == 1 && (len(run) == 0 || (x.src == run[0].src && x.rank == run[0].rank)) {
					l, li = x, k
					break
				}
			}
			if li < 0 {
				break
			}
			run, links = append(run, l), append(links, at)
			base = a.Inputs[1-li]
			next, ok := producer[base]
			if !ok || chained[next] {
				break
			}
			at = next
		}
		if len(run) < 2 {
			continue
		}
		for _, at := range links {
			chained[at] = true
		}
		slices.Reverse(run) // feature order, as the chain added them
		root := &gr.Nodes[ai]
		name := root.Outputs[0] + "/stacked_sum"
		gr.Constants[name+".axes"] = bundle.IntTensor{Shape: []int{1}, Values: []int64{1}}
		insert[ai] = append(insert[ai], lookups(name, run)...)
		insert[ai] = append(insert[ai], bundle.Node{Name: name + "/ReduceSum", Op: "ReduceSum", Inputs: []string{name + ".emb", name + ".axes"}, Outputs: []string{name}, Ints: map[string][]int64{"keepdims": {0}}})
		root.Inputs = []string{base, name}
	}
	if len(insert) == 0 {
		return
	}
	for i, n := range gr.Nodes {
		nodes = append(nodes, insert[i]...)
		if !drop[i] {
			nodes = append(nodes, n)
		}
	}
	gr.Nodes = slices.Clip(nodes)
}
