// Package onnxpb is the ONNX protobuf format in Go: onnx.proto3 as the ONNX
// project publishes it (onnx/onnx v1.23.0, commit f7546912, Apache-2.0; its
// header says where the ONNX sources generate it from) and the code
// protoc-gen-go generates from it. Do not edit either file: regenerate
// with `make proto` (protoc from Debian's protobuf-compiler, protoc-gen-go
// at the version go.mod pins for google.golang.org/protobuf).
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto3=github.com/adtech/scorer/scoring/onnx/internal/onnxpb onnx.proto3
