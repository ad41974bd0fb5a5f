package readers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "readers-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	data := "ad_id,price,shown_at\n17,0.25,2020-09-02 10:00:00\n18,abc,2020-09-02 10:00:01\n19,,1599040802\n"
	if err := os.WriteFile(filepath.Join(dir, "ads.csv"), []byte(data), 0o644); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	bucket := store.NewFileBucket(dir)
	files, err := bucket.List(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "ad_id", Type: arrow.BinaryTypes.String},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "shown_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	src, err := readers.Open(ctx, bucket, files, readers.Options{
		Schema: schema,
		OnBadRow: func(e readers.RowError) error {
			fmt.Println("dropped:", e)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(readers.SourceFile(rec), rec.NumRows(), "rows:", rec.Column(0), rec.Column(1))
		rec.Release()
	}
	for _, f := range src.Files() {
		fmt.Printf("%s: %d rows, %d bad\n", f.Key, f.Rows, f.BadRows)
	}
	// Output:
	// dropped: ads.csv: row 2 (line 3): column "price": not a number ("abc")
	// ads.csv 2 rows: ["17" "19"] [0.25 (null)]
	// ads.csv: 2 rows, 1 bad
}
