package registry

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/adtech/scorer/scoring/bundle"
)

// The registry's keys, relative to the root of its bucket. They are an
// on-store format: a registry written by an earlier build must keep
// working, so these never change what they produce for the same input.

// Dir is the folder of the registry in its bucket.
const Dir = "models"

// Names of the objects in a model's folder beside its versions. No version
// may be named after them (checkVersion).
const (
	aliasName = "current.json"
	eventsDir = "events"
)

// modelPrefix is the folder of a model: models/<name>/.
func modelPrefix(name string) string { return Dir + "/" + name + "/" }

// versionPrefix is the folder of a version's bundle: models/<name>/<version>/.
func versionPrefix(name, version string) string { return modelPrefix(name) + version + "/" }

// modelKey is the key of a version's model.yaml, the object whose existence
// makes the version exist (it is written last, create-if-absent).
func modelKey(name, version string) string { return versionPrefix(name, version) + bundle.ModelFile }

// weightsKey is the key of a version's weights.safetensors.
func weightsKey(name, version string) string {
	return versionPrefix(name, version) + bundle.WeightsFile
}

// referenceKey is the key of a version's reference.json.
func referenceKey(name, version string) string {
	return versionPrefix(name, version) + bundle.ReferenceFile
}

// aliasKey is the key of a model's alias: models/<name>/current.json.
func aliasKey(name string) string { return modelPrefix(name) + aliasName }

// eventsPrefix is the folder of a model's event log: models/<name>/events/.
func eventsPrefix(name string) string { return modelPrefix(name) + eventsDir + "/" }

// eventKey is the key of event seq: models/<name>/events/<seq:06d>.json.
func eventKey(name string, seq int) string {
	return fmt.Sprintf("%s%06d.json", eventsPrefix(name), seq)
}

// versionOf parses a key listed under models/: the model and version of a
// models/<name>/<version>/model.yaml key; ok is false for every other key
// (weights, aliases, events, a version folder without its model.yaml).
func versionOf(key string) (name, version string, ok bool) {
	rest, found := strings.CutPrefix(key, Dir+"/")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[2] != bundle.ModelFile || checkName(parts[0]) != nil || checkVersion(parts[1]) != nil {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// seqOf parses the sequence number of a key listed under eventsPrefix; ok
// is false for any other object.
func seqOf(name, key string) (int, bool) {
	rest, found := strings.CutPrefix(key, eventsPrefix(name))
	if !found {
		return 0, false
	}
	digits, found := strings.CutSuffix(rest, ".json")
	if !found || len(digits) < 6 {
		return 0, false
	}
	seq, err := strconv.Atoi(digits)
	if err != nil || seq <= 0 || eventKey(name, seq) != key {
		return 0, false
	}
	return seq, true
}
