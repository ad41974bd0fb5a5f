// Command fakegcs runs a GCS emulator (fake-gcs-server's in-memory server) on
// a local address, with buckets seeded from local folders, so that scorer's
// gs:// paths can be tried without a cloud account:
//
//	go run ./internal/tools/fakegcs -addr 127.0.0.1:4443 \
//	    -bucket ads=testdata/store -bucket models=testdata/models -bucket analytics
//	STORAGE_EMULATOR_HOST=127.0.0.1:4443 scorer backfill --month 2020-09 \
//	    --input gs://ads --model gs://models/ctr-demo --output gs://analytics/scorer
//
// It serves until interrupted. Everything is lost when it stops.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

type buckets []string

func (b *buckets) String() string     { return strings.Join(*b, ",") }
func (b *buckets) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	addr := flag.String("addr", "127.0.0.1:4443", "address to listen on")
	var bs buckets
	flag.Var(&bs, "bucket", "NAME or NAME=DIR: create a bucket, seeded with DIR's files (repeatable)")
	flag.Parse()
	if err := run(*addr, bs); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, bs buckets) error {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q: %w", portText, err)
	}
	var objects []fakestorage.Object
	var names []string
	for _, spec := range bs {
		name, dir, _ := strings.Cut(spec, "=")
		names = append(names, name)
		if dir == "" {
			continue
		}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			objects = append(objects, fakestorage.Object{
				ObjectAttrs: fakestorage.ObjectAttrs{BucketName: name, Name: filepath.ToSlash(rel)}, Content: data,
			})
			return nil
		})
		if err != nil {
			return fmt.Errorf("seed bucket %s: %w", name, err)
		}
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: host, Port: uint16(port), InitialObjects: objects,
	})
	if err != nil {
		return err
	}
	defer srv.Stop()
	for _, n := range names {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: n})
	}
	log.Printf("GCS emulator on %s with buckets %v (%d objects); STORAGE_EMULATOR_HOST=%s", srv.URL(), names, len(objects), addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}
