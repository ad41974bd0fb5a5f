package writers

import "github.com/adtech/scorer/writers/internal/writertest"

// The helpers shared with writers/table live in writers/internal/writertest.
type scoreRow = writertest.ScoreRow

var (
	scoreSchema  = writertest.ScoreSchema
	rejectSchema = writertest.RejectSchema
	scoreRecord  = writertest.ScoreRecord
	genScores    = writertest.GenScores
	duck         = writertest.Duck
	queryRows    = writertest.QueryRows
	golden       = writertest.Golden
)

func ptr[T any](v T) *T { return writertest.Ptr(v) }
