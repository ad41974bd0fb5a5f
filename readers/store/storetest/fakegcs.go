package storetest

import (
	"context"
	"net/http/httptest"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/adtech/scorer/readers/store"
)

// FakeGCS is a gs:// bucket named bucket, under prefix, on an in-process
// GCS emulator (fake-gcs-server, memory backend), with the store's default
// options; the emulator is returned too, to seed objects without HTTP
// (Server.CreateObject; names then include prefix). Everything stops when
// the test ends. The emulator's memory backend is quadratic in the objects
// of a bucket: seed thousands, not hundreds of thousands.
func FakeGCS(t testing.TB, bucket, prefix string) (store.Bucket, *fakestorage.Server) {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	ts := httptest.NewServer(srv.HTTPHandler())
	// WithJSONReads: the emulator serves reads through the JSON API only.
	client, err := storage.NewClient(context.Background(),
		option.WithEndpoint(ts.URL+"/storage/v1/"), option.WithHTTPClient(ts.Client()),
		option.WithoutAuthentication(), storage.WithJSONReads(), storage.WithDisabledClientMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		ts.Close()
		srv.Stop()
	})
	b, err := store.NewGCSBucket(client, bucket, prefix, store.DefaultGCSOptions())
	if err != nil {
		t.Fatal(err)
	}
	return b, srv
}
