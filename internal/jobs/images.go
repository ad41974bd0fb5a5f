package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/training"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/table"
)

// ImageOptions say how a run reads the images of a model's image features.
type ImageOptions struct {
	// OnBadImage is scoring.BadImageMissing (the default: the row is
	// scored with the model's missing-image embedding and counted),
	// scoring.BadImageReject (the row is a bad row: the rejects table,
	// with its file, row, the URI and the reason, within max_bad_rows) or
	// scoring.BadImageFail (the run fails as bad input, naming the row,
	// the URI and the reason).
	OnBadImage string
	// Workers fetch and decode images at once (default GOMAXPROCS),
	// apart from the scoring workers.
	Workers int
	// MaxBytes refuses larger image objects (default 8 MiB).
	MaxBytes int64
	// Open opens the bucket of a gs:// URI (default store.Open).
	Open images.Opener
}

// ImageEmbeddingsTable is the table that persists the image embeddings
// computed by table's runs: the cache by content that later runs of the
// same model version start from.
func ImageEmbeddingsTable(tbl string) string { return tbl + "_image_embeddings" }

// imageEmbeddingsSchema: one row per image content a run embedded, for a
// model version. embedding is the E float32 values as a JSON array, each
// written in the fewest digits that read back to the same float32
// (DuckDB: embedding::FLOAT[]).
func imageEmbeddingsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "model_name", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String},
		{Name: "crc32c", Type: arrow.PrimitiveTypes.Int64},
		{Name: "size", Type: arrow.PrimitiveTypes.Int64},
		{Name: "embedding", Type: arrow.BinaryTypes.String},
	}, nil)
}

// imageStages makes the image stage of the champion (nil without image
// inputs) and of each challenger with image inputs (set in chs), each
// preloaded with the embeddings its model version has in the output
// store (one read of the table for all of them); it returns every stage
// made with its model.
func (j *ScoreJob) imageStages(ctx context.Context, chs []scoring.Challenger) (*scoring.ImageStage, []modelStage, error) {
	var all []modelStage
	main, err := j.imageStage(j.Bundle)
	if err != nil {
		return nil, nil, err
	}
	if main != nil {
		all = append(all, modelStage{j.Bundle, main})
	}
	for i := range chs {
		if chs[i].Images, err = j.imageStage(chs[i].Bundle); err != nil {
			return nil, nil, err
		}
		if chs[i].Images != nil {
			all = append(all, modelStage{chs[i].Bundle, chs[i].Images})
		}
	}
	if err := j.preloadEmbeddings(ctx, all); err != nil {
		return nil, nil, err
	}
	return main, all, nil
}

func (j *ScoreJob) imageStage(bu *bundle.Bundle) (*scoring.ImageStage, error) {
	ins := bu.Features.ImageInputs()
	if len(ins) == 0 {
		return nil, nil
	}
	st, err := scoring.NewImageStage(bu, NewImageLoader(j.Input, ins, j.Images), j.Images.OnBadImage)
	if err != nil {
		return nil, fmt.Errorf("%w: model %s %s: %w", ErrConfig, bu.Name, bu.Version, err)
	}
	return st, nil
}

// preloadEmbeddings adds each stage's model version's published
// embeddings to its cache; those of the run's own partition are kept as
// new, so that a run replacing the partition writes them again. A row
// that cannot be read fails the run: the table is the project's own
// output.
func (j *ScoreJob) preloadEmbeddings(ctx context.Context, stages []modelStage) error {
	if len(stages) == 0 {
		return nil
	}
	type model struct{ name, version string }
	byModel := map[model]*scoring.ImageStage{}
	loaded := map[model]int{}
	for _, ms := range stages {
		byModel[model{ms.bu.Name, ms.bu.Version}] = ms.st
	}
	pubd, err := listPublished(ctx, j.Output, ImageEmbeddingsTable(j.Table))
	if err != nil {
		return err
	}
	for _, part := range pubd.parts {
		err := pubd.readRows(ctx, j.Output, part, imageEmbeddingsSchema(), func(rec arrow.RecordBatch, r int) error {
			m := model{rec.Column(0).(*array.String).Value(r), rec.Column(1).(*array.String).Value(r)}
			st := byModel[m]
			if st == nil {
				return nil
			}
			crc, size := rec.Column(2).(*array.Int64).Value(r), rec.Column(3).(*array.Int64).Value(r)
			var emb []float32
			if err := json.Unmarshal([]byte(rec.Column(4).(*array.String).Value(r)), &emb); err != nil {
				return fmt.Errorf("embedding: %w", err)
			}
			if crc < 0 || crc > math.MaxUint32 || size < 0 {
				return fmt.Errorf("crc32c %d, size %d: not a content key", crc, size)
			}
			loaded[m]++
			return st.Preload(images.Key{CRC32C: uint32(crc), Size: size}, emb, part == j.Partition)
		})
		if err != nil {
			return fmt.Errorf("read the image embeddings cache: %w", err)
		}
	}
	for _, ms := range stages {
		j.Log.Info("image embeddings cached", "model", ms.bu.Name, "model_version", ms.bu.Version,
			"embeddings", loaded[model{ms.bu.Name, ms.bu.Version}], "table", ImageEmbeddingsTable(j.Table))
	}
	return nil
}

// modelStage is a model and its image stage.
type modelStage struct {
	bu *bundle.Bundle
	st *scoring.ImageStage
}

// writeEmbeddings stages the embeddings the run computed (and, for a
// replaced partition, those it had) into the embeddings table, in the
// run's own commit. An embedding that is not finite is not kept.
func (j *ScoreJob) writeEmbeddings(ctx context.Context, run *table.Run, stages []modelStage) error {
	if len(stages) == 0 {
		return nil
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, imageEmbeddingsSchema())
	defer b.Release()
	var text strings.Builder
	for _, ms := range stages {
		err := ms.st.New(func(k images.Key, emb []float32) error {
			text.Reset()
			text.WriteByte('[')
			for i, v := range emb {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil
				}
				if i > 0 {
					text.WriteByte(',')
				}
				text.WriteString(strconv.FormatFloat(float64(v), 'g', -1, 32))
			}
			text.WriteByte(']')
			b.Field(0).(*array.StringBuilder).Append(ms.bu.Name)
			b.Field(1).(*array.StringBuilder).Append(ms.bu.Version)
			b.Field(2).(*array.Int64Builder).Append(int64(k.CRC32C))
			b.Field(3).(*array.Int64Builder).Append(k.Size)
			b.Field(4).(*array.StringBuilder).Append(text.String())
			return nil
		})
		if err != nil {
			return err
		}
	}
	return writeRecord(ctx, run, table.OutputSpec{
		Table: ImageEmbeddingsTable(j.Table), Partition: j.Partition, Mode: j.Mode, Schema: imageEmbeddingsSchema(),
		Constants: []writers.Constant{{Name: "run_id", Value: j.RunID}},
	}, b)
}

// loader is the image loader of the pipeline's image features (one way
// to read them all: features.Spec.Validate), reading j's input store.
func (j TrainJob) loader(fx *features.Pipeline) *images.Loader {
	return NewImageLoader(j.Input, fx.Images(), j.Images)
}

// NewImageLoader is the loader of image inputs ins (of one spec: they read
// images one way, features.Spec.Validate), reading keys of the input store
// in, with the options o: what a run, training and scorer serve read
// images with.
func NewImageLoader(in store.Bucket, ins []features.ImageInput, o ImageOptions) *images.Loader {
	return images.NewLoader(in, o.Open, images.Options{
		Width: ins[0].Size, Height: ins[0].Size, Mean: ins[0].Mean, Std: ins[0].Std, Workers: o.Workers, MaxBytes: o.MaxBytes,
	})
}

// imageIndex numbers the distinct image URIs of the training rows.
type imageIndex struct {
	of   map[string]int32
	uris []string
	// keys are the content keys of the images loadImages read (the zero
	// Key for a bad one).
	keys []images.Key
}

func newImageIndex() *imageIndex { return &imageIndex{of: map[string]int32{}} }

// add appends the index of each URI to idx (-1 for none).
func (x *imageIndex) add(idx []int32, uris []string) []int32 {
	for _, uri := range uris {
		if uri == "" {
			idx = append(idx, -1)
			continue
		}
		i, ok := x.of[uri]
		if !ok {
			i = int32(len(x.uris))
			uri = strings.Clone(uri) // the record's memory is reused
			x.of[uri] = i
			x.uris = append(x.uris, uri)
		}
		idx = append(idx, i)
	}
	return idx
}

// loadImages reads the distinct images of the training rows into
// all.Images; a row whose image cannot be used trains the missing
// embedding, or fails the job (images.on_bad_image: fail), or is left
// out (reject: keep lists the rows to train on; nil keeps them all).
func (j TrainJob) loadImages(ctx context.Context, fx *features.Pipeline, x *imageIndex, all *training.Dataset) (keep []int, err error) {
	limit := cmp.Or(j.MaxImages, DefaultMaxTrainImages)
	if len(x.uris) > limit {
		return nil, fmt.Errorf("%w: month %s has %d distinct images, more than images.max_train_images (%d), which bounds the memory training holds them in",
			ErrConfig, j.Month, len(x.uris), limit)
	}
	loader := j.loader(fx)
	size := loader.Options().Size()
	all.Images = make([]float32, len(x.uris)*size)
	x.keys = make([]images.Key, len(x.uris))
	bad := make([]bool, len(x.uris))
	byReason := map[images.Reason]int{}
	const chunk = 256
	for lo := 0; lo < len(x.uris); lo += chunk {
		hi := min(lo+chunk, len(x.uris))
		res, err := loader.Load(ctx, x.uris[lo:hi], all.Images[lo*size:hi*size])
		if err != nil {
			return nil, fmt.Errorf("read training images: %w", err)
		}
		for i, r := range res {
			if r.Err == nil {
				x.keys[lo+i] = r.Key
				continue
			}
			if j.Images.OnBadImage == scoring.BadImageFail {
				return nil, fmt.Errorf("%w: %w", ErrBadInput, r.Err)
			}
			// BadImageReject leaves the rows out (keep, below); the
			// others train the missing embedding.
			bad[lo+i] = true
			byReason[r.Err.Reason]++
			if byReason[r.Err.Reason] <= 3 && j.Log != nil {
				j.Log.Warn("bad image: its rows train the missing-image embedding", "uri", r.Err.URI, "reason", r.Err.Reason, "err", r.Err.Err)
			}
		}
	}
	for i, u := range all.ImageIndex {
		if u >= 0 && bad[u] {
			all.ImageIndex[i] = -1
		}
	}
	if j.Images.OnBadImage == scoring.BadImageReject {
		n, m := all.Batch.N, len(all.ImageIndex)/max(1, all.Batch.N)
		keep = make([]int, 0, n) // not nil, even if empty
		for r := range n {
			if !slices.Contains(all.ImageIndex[r*m:(r+1)*m], -1) {
				keep = append(keep, r)
			}
		}
		if j.Log != nil && len(keep) < n {
			j.Log.Warn("rows with a bad or missing image left out of training (images.on_bad_image: reject)", "rows", n-len(keep))
		}
	}
	if j.Log != nil {
		j.Log.Info("training images", "distinct", len(x.uris), "bad_by_reason", byReason)
	}
	return keep, nil
}

// preloadTrained gives the image stage the trained tower's embeddings of
// the images training read (x, all.Images), so that the passes after
// training (reference rows, the training profile) decode none again.
func preloadTrained(bu *bundle.Bundle, st *scoring.ImageStage, tw *scoring.Tower, x *imageIndex, all []float32) error {
	size, e := tw.InputSize(), tw.Dim()
	emb := make([]float32, e)
	for u, k := range x.keys {
		if k == (images.Key{}) { // bad: not read
			continue
		}
		tw.Embed(all[u*size:(u+1)*size], 1, emb)
		if err := st.Preload(k, emb, false); err != nil {
			return fmt.Errorf("model %s %s: %w", bu.Name, bu.Version, err)
		}
	}
	return nil
}
