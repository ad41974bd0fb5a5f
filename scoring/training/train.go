package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/metrics"
)

// Training defaults, used for zero fields of Config.
const (
	DefaultEpochs       = 10
	DefaultBatchSize    = 256
	DefaultLearningRate = 0.001
	DefaultPatience     = 2
)

// ErrConfig marks an invalid training config: retrying cannot help.
var ErrConfig = errors.New("invalid train config")

// evalBatchSize is the batch size of the model that scores the training and
// validation data for the metrics.
const evalBatchSize = 1024

// Config says what to train and how. Zero Epochs, BatchSize and
// LearningRate take the defaults.
type Config struct {
	Arch bundle.Architecture
	// Inputs: Dense must equal the data's D, and Cardinalities has one entry
	// per categorical column (K of them).
	Inputs bundle.Inputs

	Epochs       int     // passes over the training data
	BatchSize    int     // rows per optimiser step
	LearningRate float64 // Adam step size
	// L2, if positive, adds L2*w to the gradient of every weight, biases
	// and embeddings included.
	L2 float64
	// Seed makes training deterministic: the initial weights and the order
	// of the rows in each epoch depend on it alone.
	Seed int64
	// Patience: with validation data, training stops after this many
	// epochs in a row without a lower validation log loss; 0 never stops
	// early. Either way, with validation data the returned weights are
	// those of the epoch with the lowest validation log loss.
	Patience int

	// ImageInit, if set, are the image tower's initial weights (an
	// imported tower, onnx.ImportTower: image.conv{i}.w/b, image.proj.w/b,
	// of the shapes Arch.Image gives), instead of random ones; FreezeImage
	// keeps them as they are (only the rest of the model, and the missing
	// embedding, is trained).
	ImageInit   map[string]*bundle.Param
	FreezeImage bool

	// Now stamps Training.TrainedAt; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is called after every epoch.
	Progress func(EpochStats)
}

// EpochStats reports one finished epoch to Config.Progress.
type EpochStats struct {
	Epoch      int     // 1-based
	Loss       float64 // mean of the epoch's minibatch log losses
	ValLogLoss float64 // NaN without validation data
	ValAUC     float64 // NaN without validation data or with one class
	// Best: this epoch has the lowest validation log loss so far (its
	// weights are kept); false without validation data.
	Best    bool
	Elapsed time.Duration
}

// DefaultConfig returns a config with the default training settings
// and no architecture or inputs.
func DefaultConfig() Config {
	return Config{Epochs: DefaultEpochs, BatchSize: DefaultBatchSize, LearningRate: DefaultLearningRate, Patience: DefaultPatience}
}

func (c Config) withDefaults() Config {
	if c.Epochs == 0 {
		c.Epochs = DefaultEpochs
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.LearningRate == 0 {
		c.LearningRate = DefaultLearningRate
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the config on its own: the architecture and inputs (as
// bundle.Bundle.Validate would) and the training settings (zero meaning default).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("%w: epochs %d", ErrConfig, c.Epochs)
	case c.BatchSize < 0:
		return fmt.Errorf("%w: batch size %d", ErrConfig, c.BatchSize)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("%w: learning rate %g", ErrConfig, c.LearningRate)
	case !(c.L2 >= 0) || math.IsInf(c.L2, 0):
		return fmt.Errorf("%w: l2 %g", ErrConfig, c.L2)
	case c.Patience < 0:
		return fmt.Errorf("%w: patience %d", ErrConfig, c.Patience)
	}
	if err := bundle.ValidateArch(c.Arch, c.Inputs); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Dataset is labelled model input: Batch holds all N rows and Labels their
// N clicks (0 or 1; values in between are soft labels).
type Dataset struct {
	Batch  features.Batch
	Labels []float32
	// With image features: Images are the distinct images of the rows,
	// 3·S·S values each, laid out as readers/images makes them, and
	// ImageIndex (N × I) each row's image per image feature: an index
	// into Images, or -1 for none (missing or bad: the model learns an
	// embedding for it). Batch.ImageEmb is not read: training computes
	// the embeddings.
	Images     []float32
	ImageIndex []int32
}

// images is the number of distinct images of the dataset (U).
func (ds *Dataset) images(in bundle.Inputs) int {
	if in.Images == 0 {
		return 0
	}
	return len(ds.Images) / (3 * in.ImageSize * in.ImageSize)
}

func (ds *Dataset) check(in bundle.Inputs) error {
	b := &ds.Batch
	switch {
	case b.N < 0:
		return fmt.Errorf("%w: %d rows", scoring.ErrInput, b.N)
	case b.D != in.Dense:
		return fmt.Errorf("%w: %d dense features, config has %d", scoring.ErrInput, b.D, in.Dense)
	case b.K != in.K():
		return fmt.Errorf("%w: %d categorical features, config has %d", scoring.ErrInput, b.K, in.K())
	case len(b.Dense) != b.N*b.D:
		return fmt.Errorf("%w: %d dense values, want %d rows × %d", scoring.ErrInput, len(b.Dense), b.N, b.D)
	case len(b.Cat) != b.N*b.K:
		return fmt.Errorf("%w: %d categorical values, want %d rows × %d", scoring.ErrInput, len(b.Cat), b.N, b.K)
	case len(ds.Labels) != b.N:
		return fmt.Errorf("%w: %d labels for %d rows", scoring.ErrInput, len(ds.Labels), b.N)
	case len(ds.ImageIndex) != b.N*in.Images:
		return fmt.Errorf("%w: %d image indices, want %d rows × %d image features", scoring.ErrInput, len(ds.ImageIndex), b.N, in.Images)
	case in.Images > 0 && len(ds.Images)%(3*in.ImageSize*in.ImageSize) != 0:
		return fmt.Errorf("%w: %d image values are not a whole number of 3×%d×%d images", scoring.ErrInput, len(ds.Images), in.ImageSize, in.ImageSize)
	}
	for i, u := range ds.ImageIndex {
		if u < -1 || int(u) >= ds.images(in) {
			return fmt.Errorf("%w: row %d: image feature %d: image %d of %d", scoring.ErrInput, i/in.Images, i%in.Images, u, ds.images(in))
		}
	}
	for i, y := range ds.Labels {
		if !(y >= 0 && y <= 1) {
			return fmt.Errorf("%w: row %d: label %g is not in [0, 1]", scoring.ErrInput, i, y)
		}
	}
	for i, x := range b.Dense {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: row %d: dense feature %d is %g", scoring.ErrInput, i/b.D, i%b.D, x)
		}
	}
	for i, v := range b.Cat {
		if c := in.Cardinalities[i%b.K]; v < 0 || int(v) >= c {
			return fmt.Errorf("%w: row %d: categorical feature %d: index %d out of range [0, %d)", scoring.ErrInput, i/b.K, i%b.K, v, c)
		}
	}
	return nil
}

// Train fits a model to the training data with Adam on the mean binary
// cross-entropy and returns it as a bundle with Arch, Inputs, Weights,
// Metrics (see below) and Training filled in. The caller sets Name,
// Version, Features, Stats, Training.Data and Training.Command before
// saving it.
//
// val may be the zero Dataset. With validation rows, each epoch ends by
// scoring them: the weights of the epoch with the lowest validation log
// loss are the ones returned (Training.BestEpoch), and training stops
// after Patience epochs without improvement (if Patience > 0). Without,
// it runs Epochs epochs and returns the last.
//
// Metrics, for the training data and (prefixed val_) the validation data:
// rows; auc (absent with one class); logloss; logloss_const, the log loss
// of the constant predictor at the training click rate (the score to
// beat); calibration, mean score / click rate (1 is calibrated; absent
// without clicks). No metric is ever NaN: one that does not exist is
// absent.
//
// Initial weights: wide weights zero and the output bias at the logit of
// the training click rate; deep embeddings normal with standard deviation
// 0.05; hidden layers He-normal, the output layer Xavier-uniform, their
// biases zero. Each epoch visits the rows in a fresh seeded random order;
// a final short minibatch is padded with rows of weight zero.
func Train(ctx context.Context, cfg Config, train, val Dataset) (*bundle.Bundle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	cfg = cfg.withDefaults()
	if err := train.check(cfg.Inputs); err != nil {
		return nil, fmt.Errorf("train: training data: %w", err)
	}
	if train.Batch.N == 0 {
		return nil, fmt.Errorf("train: training data: %w: no rows", scoring.ErrInput)
	}
	if val.Batch.N > 0 || len(val.Labels) > 0 {
		if err := val.check(cfg.Inputs); err != nil {
			return nil, fmt.Errorf("train: validation data: %w", err)
		}
	}

	rate := clickRate(train.Labels)
	bu, err := initBundle(cfg, rate)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	tr, err := newTrainer(cfg, bu, train.images(cfg.Inputs))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer tr.close()
	// The evaluation model shares the weights being trained.
	eval, err := scoring.NewModel(bu, evalBatchSize)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer func() { _ = eval.Close() }()

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5ca1ab1e))
	start := cfg.Now()
	began := time.Now()
	perm := make([]int, train.Batch.N)
	for i := range perm {
		perm[i] = i
	}
	bestEpoch, bestLoss := 0, math.Inf(1)
	var best map[string][]float32 // the weights of bestEpoch
	epoch := 1
	for ; epoch <= cfg.Epochs; epoch++ {
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var sum float64
		steps := 0
		for lo := 0; lo < len(perm); lo += cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			loss, err := tr.step(&train, perm[lo:min(lo+cfg.BatchSize, len(perm))])
			if err != nil {
				return nil, fmt.Errorf("train: epoch %d: %w", epoch, err)
			}
			sum += loss
			steps++
		}
		if math.IsNaN(sum) || math.IsInf(sum, 0) {
			return nil, fmt.Errorf("train: epoch %d: loss diverged (%g); lower the learning rate", epoch, sum)
		}
		st := EpochStats{Epoch: epoch, Loss: sum / float64(steps), ValLogLoss: math.NaN(), ValAUC: math.NaN()}
		if val.Batch.N > 0 {
			p, err := scoreAll(eval, bu, &val)
			if err != nil {
				return nil, fmt.Errorf("train: epoch %d: validation: %w", epoch, err)
			}
			st.ValLogLoss, st.ValAUC = metrics.LogLoss(p, val.Labels), metrics.AUC(p, val.Labels)
			if st.ValLogLoss < bestLoss {
				bestEpoch, bestLoss, st.Best = epoch, st.ValLogLoss, true
				best = snapshot(bu, best)
			}
		}
		st.Elapsed = time.Since(began)
		if cfg.Progress != nil {
			cfg.Progress(st)
		}
		if best != nil && cfg.Patience > 0 && epoch-bestEpoch >= cfg.Patience {
			epoch++
			break
		}
	}
	ran := epoch - 1
	if best != nil {
		restore(bu, best)
	} else {
		bestEpoch = 0
	}

	bu.Metrics = map[string]float64{}
	for _, ds := range []struct {
		prefix string
		data   *Dataset
	}{{"", &train}, {"val_", &val}} {
		if ds.data.Batch.N == 0 {
			continue
		}
		p, err := scoreAll(eval, bu, ds.data)
		if err != nil {
			return nil, fmt.Errorf("train: metrics: %w", err)
		}
		for name, v := range Metrics(p, ds.data.Labels, rate) {
			bu.Metrics[ds.prefix+name] = v
		}
	}
	bu.Training = bundle.TrainingInfo{
		Rows:         train.Batch.N,
		Seed:         cfg.Seed,
		Epochs:       ran,
		BestEpoch:    bestEpoch,
		Patience:     cfg.Patience,
		BatchSize:    cfg.BatchSize,
		LearningRate: cfg.LearningRate,
		L2:           cfg.L2,
		TrainedAt:    start.UTC().Truncate(time.Second),
	}
	return bu, nil
}

// Metrics are the metrics Train records for scores p of rows with the
// given labels, for a model trained at click rate rate: rows, auc,
// logloss, logloss_const and calibration, each only if it exists (no NaN).
func Metrics(p, labels []float32, rate float64) map[string]float64 {
	m := map[string]float64{"rows": float64(len(p))}
	constant := make([]float32, len(labels))
	for i := range constant {
		constant[i] = float32(rate)
	}
	var sum float64
	for _, x := range p {
		sum += float64(x)
	}
	cal := math.NaN()
	if r := clickRate(labels); r > 0 {
		cal = sum / float64(len(p)) / r
	}
	for name, v := range map[string]float64{
		"auc":           metrics.AUC(p, labels),
		"logloss":       metrics.LogLoss(p, labels),
		"logloss_const": metrics.LogLoss(constant, labels),
		"calibration":   cal,
	} {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m[name] = v
		}
	}
	return m
}

// clickRate is the mean label (0 without rows).
func clickRate(labels []float32) float64 {
	if len(labels) == 0 {
		return 0
	}
	var clicks float64
	for _, y := range labels {
		clicks += float64(y)
	}
	return clicks / float64(len(labels))
}

// snapshot copies the bundle's weights into dst (allocated if nil).
func snapshot(bu *bundle.Bundle, dst map[string][]float32) map[string][]float32 {
	if dst == nil {
		dst = make(map[string][]float32, len(bu.Weights))
	}
	for name, p := range bu.Weights {
		dst[name] = append(dst[name][:0], p.Data...)
	}
	return dst
}

// restore copies saved weights back in place, where the graphs read them.
func restore(bu *bundle.Bundle, saved map[string][]float32) {
	for name, p := range bu.Weights {
		copy(p.Data, saved[name])
	}
}

// scoreAll scores a dataset with the model m compiled from bu (which
// shares bu's weights), its image embeddings computed first.
func scoreAll(m *scoring.Model, bu *bundle.Bundle, ds *Dataset) ([]float32, error) {
	if err := Embed(bu, ds); err != nil {
		return nil, err
	}
	b := &ds.Batch
	p := make([]float32, b.N)
	return p, m.Score(b, p)
}

// Embed sets ds.Batch.ImageEmb to the embeddings that bu's image tower
// gives the rows' images (the missing embedding for a row without one),
// as scoring computes them; nothing without image features.
func Embed(bu *bundle.Bundle, ds *Dataset) error {
	in := bu.Inputs
	if in.Images == 0 {
		ds.Batch.ImageEmb = ds.Batch.ImageEmb[:0]
		return nil
	}
	tw, err := scoring.NewTower(bu)
	if err != nil {
		return err
	}
	u, e := ds.images(in), tw.Dim()
	emb := make([]float32, u*e)
	const chunk = 64 // images per call: bounded working memory
	for lo := 0; lo < u; lo += chunk {
		hi := min(lo+chunk, u)
		tw.Embed(ds.Images[lo*tw.InputSize():hi*tw.InputSize()], hi-lo, emb[lo*e:hi*e])
	}
	b := &ds.Batch
	b.ImageEmb = slices.Grow(b.ImageEmb[:0], b.N*in.Images*e)[:b.N*in.Images*e]
	for i, idx := range ds.ImageIndex {
		src := tw.Missing()
		if idx >= 0 {
			src = emb[int(idx)*e : (int(idx)+1)*e]
		}
		copy(b.ImageEmb[i*e:(i+1)*e], src)
	}
	return nil
}

// initBundle returns a bundle with the config's architecture and freshly
// initialised weights, for a training click rate of rate.
func initBundle(cfg Config, rate float64) (*bundle.Bundle, error) {
	bu := &bundle.Bundle{Arch: cfg.Arch, Inputs: cfg.Inputs, Weights: map[string]*bundle.Param{}}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1417))
	rate = min(max(rate, 1e-4), 1-1e-4)
	baseLogit := float32(math.Log(rate / (1 - rate)))
	names, shapes := bundle.WeightShapes(cfg.Arch, cfg.Inputs)
	for _, name := range names {
		p := bundle.NewParam(shapes[name]...)
		bu.Weights[name] = p
		switch name {
		case "wide.emb", "wide.dense":
			// zero: the wide part is a logistic regression.
		case "wide.bias":
			p.Data[0] = baseLogit
		case "image.missing", "image.proj.b":
			// zero
		case "deep.emb":
			for i := range p.Data {
				p.Data[i] = float32(0.05 * rng.NormFloat64())
			}
		case "deep.out.w":
			limit := math.Sqrt(6 / float64(p.Shape[0]+p.Shape[1]))
			for i := range p.Data {
				p.Data[i] = float32(limit * (2*rng.Float64() - 1))
			}
		case "deep.out.b":
			if !cfg.Arch.HasWide() {
				p.Data[0] = baseLogit
			}
		default:
			if len(p.Shape) == 4 { // image.conv{i}.w: He-normal over a 3×3×Cin window
				std := math.Sqrt(2 / float64(p.Shape[1]*p.Shape[2]*p.Shape[3]))
				for i := range p.Data {
					p.Data[i] = float32(std * rng.NormFloat64())
				}
			}
			if len(p.Shape) == 2 { // deep.l{i}.w, image.proj.w; biases stay zero
				std := math.Sqrt(2 / float64(p.Shape[0]))
				for i := range p.Data {
					p.Data[i] = float32(std * rng.NormFloat64())
				}
			}
		}
	}
	for name, p := range cfg.ImageInit {
		w, ok := bu.Weights[name]
		if !ok || !strings.HasPrefix(name, "image.") || !slices.Equal(w.Shape, p.Shape) || len(p.Data) != p.Size() {
			return nil, fmt.Errorf("%w: initial image tower weight %q of shape %v is not one of the architecture's (%v)", ErrConfig, name, p.Shape, shapeOf(w))
		}
		copy(w.Data, p.Data)
	}
	return bu, nil // validated by the network built from it (scoring.NewTrainingNetwork)
}

func shapeOf(p *bundle.Param) []int {
	if p == nil {
		return nil
	}
	return p.Shape
}

// frozen reports whether training leaves the parameter node name as it is:
// the image tower's, under FreezeImage.
func (c Config) frozen(name string) bool {
	return c.FreezeImage && (strings.HasPrefix(name, "image.conv") || strings.HasPrefix(name, "image.proj"))
}

// trainer is the training graph: the network, the loss and its gradient.
type trainer struct {
	net        *scoring.Network
	label      *tensor.Dense // (B, 1)
	weight     *tensor.Dense // (B, 1): 1/n for the n real rows, 0 for padding
	loss       *gorgonia.Node
	vm         gorgonia.VM
	solver     gorgonia.Solver
	valueGrads []gorgonia.ValueGrad
	offsets    []int32
	// slotOf maps an image of the dataset to its slot in the step's
	// image input (reused map).
	slotOf map[int32]int32
	in     bundle.Inputs
}

func newTrainer(cfg Config, bu *bundle.Bundle, images int) (*trainer, error) {
	// Room for a step's distinct images: every row's, or every image of
	// the data if there are fewer.
	slots := cfg.BatchSize * cfg.Inputs.Images
	if cfg.Inputs.Images > 0 {
		slots = max(1, min(slots, images))
	}
	net, err := scoring.NewTrainingNetwork(bu, cfg.BatchSize, slots)
	if err != nil {
		return nil, err
	}
	g, b := net.Graph(), cfg.BatchSize
	tr := &trainer{
		in:     cfg.Inputs,
		net:    net,
		label:  tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(b, 1)),
		weight: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(b, 1)),
	}
	for _, o := range bu.Inputs.Offsets() {
		tr.offsets = append(tr.offsets, int32(o))
	}
	y := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(b, 1), gorgonia.WithName("input.label"), gorgonia.WithValue(tr.label))
	w := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(b, 1), gorgonia.WithName("input.weight"), gorgonia.WithValue(tr.weight))

	// Per row, softplus(z) - y·z is the cross-entropy of sigmoid(z) against
	// y, computed stably from the logit z.
	z := net.Logit()
	sp, err := gorgonia.Softplus(z)
	if err != nil {
		return nil, fmt.Errorf("build loss: %w", err)
	}
	yz, err := gorgonia.HadamardProd(y, z)
	if err != nil {
		return nil, fmt.Errorf("build loss: %w", err)
	}
	rowLoss, err := gorgonia.Sub(sp, yz)
	if err != nil {
		return nil, fmt.Errorf("build loss: %w", err)
	}
	weighted, err := gorgonia.HadamardProd(w, rowLoss)
	if err != nil {
		return nil, fmt.Errorf("build loss: %w", err)
	}
	if tr.loss, err = gorgonia.Sum(weighted); err != nil {
		return nil, fmt.Errorf("build loss: %w", err)
	}
	var params []*gorgonia.Node
	for _, p := range net.Params() {
		if !cfg.frozen(p.Name()) {
			params = append(params, p)
		}
	}
	grads, err := gorgonia.Grad(tr.loss, params...)
	if err != nil {
		return nil, fmt.Errorf("build gradient: %w", err)
	}
	// A parameter's gradient is bound to it (Gorgonia adds each run's
	// gradient into the parameter's own, which the solver then zeroes),
	// except an embedding table's that is one scatter-add: the solver reads
	// that straight from the scatter's output. Binding it cost a pass over
	// the whole table each step (27M floats on the reference ctr-mlp, a
	// third of a step) to add a gradient into zeros.
	var bound []*gorgonia.Node
	for i, p := range params {
		if !bindAllGradients && scoring.IsScatterGradient(grads[i]) {
			tr.valueGrads = append(tr.valueGrads, scatterGrad{p, grads[i]})
			continue
		}
		bound = append(bound, p)
		tr.valueGrads = append(tr.valueGrads, p)
	}
	tr.vm = gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(bound...))
	tr.solver = &adam{eta: cfg.LearningRate, l2: cfg.L2}
	return tr, nil
}

// step runs one minibatch of the given rows and updates the weights. It
// returns the minibatch's mean log loss.
func (tr *trainer) step(ds *Dataset, rows []int) (float64, error) {
	tr.fill(ds, rows)
	defer tr.vm.Reset()
	if err := tr.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("run graph: %w", err)
	}
	loss, err := scalarOf(tr.loss.Value())
	if err != nil {
		return 0, fmt.Errorf("loss: %w", err)
	}
	if err := tr.solver.Step(tr.valueGrads); err != nil {
		return 0, fmt.Errorf("solver step: %w", err)
	}
	return loss, nil
}

// fill puts the given rows of ds into the graph's inputs, padding the rest
// of the batch with rows of weight zero.
func (tr *trainer) fill(ds *Dataset, rows []int) {
	b := &ds.Batch
	n, d, k := len(rows), b.D, b.K
	if t := tr.net.DenseInput(); t != nil {
		dst := t.Float32s()
		for r, i := range rows {
			copy(dst[r*d:(r+1)*d], b.Dense[i*d:(i+1)*d])
		}
		clear(dst[n*d:])
	}
	if t := tr.net.CatInput(); t != nil {
		dst := t.Int32s()
		for r, i := range rows {
			for c, v := range b.Cat[i*k : (i+1)*k] {
				dst[r*k+c] = tr.offsets[c] + v
			}
		}
		for i := n * k; i < len(dst); i++ {
			dst[i] = tr.offsets[i%k]
		}
	}
	if t := tr.net.ImagesInput(); t != nil {
		tr.fillImages(ds, rows, t.Float32s(), tr.net.ImageIndexInput().Int32s())
	}
	label, weight := tr.label.Float32s(), tr.weight.Float32s()
	for r, i := range rows {
		label[r] = ds.Labels[i]
		weight[r] = 1 / float32(n)
	}
	clear(label[n:])
	clear(weight[n:])
}

// fillImages puts the distinct images of the rows into the image slots
// and each row's slot per image feature into idx (the slot count for none,
// the missing embedding, padding rows included). Unused slots keep what
// they held: no row reads them.
func (tr *trainer) fillImages(ds *Dataset, rows []int, slots []float32, idx []int32) {
	m := tr.in.Images
	size := 3 * tr.in.ImageSize * tr.in.ImageSize
	nslots := int32(len(slots) / size)
	if tr.slotOf == nil {
		tr.slotOf = map[int32]int32{}
	}
	clear(tr.slotOf)
	for i := range idx {
		idx[i] = nslots
	}
	for r, row := range rows {
		for j, u := range ds.ImageIndex[row*m : (row+1)*m] {
			if u < 0 {
				continue
			}
			s, ok := tr.slotOf[u]
			if !ok {
				s = int32(len(tr.slotOf))
				tr.slotOf[u] = s
				copy(slots[int(s)*size:(int(s)+1)*size], ds.Images[int(u)*size:(int(u)+1)*size])
			}
			idx[r*m+j] = s
		}
	}
}

func (tr *trainer) close() { _ = tr.vm.Close() }

// bindAllGradients binds every gradient, the embedding tables' too: the
// way Gorgonia is meant to be used, for TestScatterGradientsUnbound.
var bindAllGradients = false

// scatterGrad is a parameter whose gradient is the value its gradient node
// computed in the last run (scoring.IsScatterGradient).
type scatterGrad struct{ param, grad *gorgonia.Node }

func (s scatterGrad) Value() gorgonia.Value { return s.param.Value() }

func (s scatterGrad) Grad() (gorgonia.Value, error) {
	if v := s.grad.Value(); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%s: gradient not computed", s.param.Name())
}

func scalarOf(v gorgonia.Value) (float64, error) {
	if v == nil {
		return 0, errors.New("no value")
	}
	switch x := v.Data().(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case []float32:
		if len(x) == 1 {
			return float64(x[0]), nil
		}
	}
	return 0, fmt.Errorf("value %v is not a scalar", v)
}
