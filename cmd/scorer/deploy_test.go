package main

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/internal/app"
)

// The Kubernetes manifests in deploy/ must agree with the binary: the exit
// codes their pod failure policies treat as final are the ones scorer
// documents as not worth retrying, and a sharded Job tells scorer its shard
// count.
func TestDeployManifests(t *testing.T) {
	type rule struct {
		Action      string `yaml:"action"`
		OnExitCodes *struct {
			Values []int `yaml:"values"`
		} `yaml:"onExitCodes"`
	}
	type podSpec struct {
		RestartPolicy string `yaml:"restartPolicy"`
		Containers    []struct {
			Name string   `yaml:"name"`
			Args []string `yaml:"args"`
			Env  []struct {
				Name, Value string
			} `yaml:"env"`
		} `yaml:"containers"`
	}
	type jobSpec struct {
		CompletionMode   string `yaml:"completionMode"`
		Completions      int    `yaml:"completions"`
		PodFailurePolicy struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"podFailurePolicy"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	load := func(path string, out any) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var cron struct {
		Kind string `yaml:"kind"`
		Spec struct {
			JobTemplate struct {
				Spec jobSpec `yaml:"spec"`
			} `yaml:"jobTemplate"`
		} `yaml:"spec"`
	}
	load("../../deploy/kubernetes/cronjob-nightly.yaml", &cron)
	var job struct {
		Kind string  `yaml:"kind"`
		Spec jobSpec `yaml:"spec"`
	}
	load("../../deploy/kubernetes/job-backfill-sharded.yaml", &job)

	for name, js := range map[string]jobSpec{"cronjob": cron.Spec.JobTemplate.Spec, "sharded job": job.Spec} {
		var final []int
		for _, r := range js.PodFailurePolicy.Rules {
			if r.Action == "FailJob" && r.OnExitCodes != nil {
				final = append(final, r.OnExitCodes.Values...)
			}
		}
		slices.Sort(final)
		if !slices.Equal(final, []int{exitUsage, exitBadInput}) {
			t.Errorf("%s: FailJob on exit codes %v, want %v (1 and %d are retried)", name, final, []int{exitUsage, exitBadInput}, exitBusy)
		}
		if js.Template.Spec.RestartPolicy != "Never" {
			t.Errorf("%s: restartPolicy %q, a pod failure policy needs Never", name, js.Template.Spec.RestartPolicy)
		}
	}
	if job.Spec.CompletionMode != "Indexed" {
		t.Errorf("sharded job: completionMode %q, want Indexed (it sets JOB_COMPLETION_INDEX)", job.Spec.CompletionMode)
	}
	var count string
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "SCORER_SHARD_COUNT" {
			count = e.Value
		}
	}
	sh, err := app.ShardFromEnv("", func(k string) (string, bool) {
		return map[string]string{"JOB_COMPLETION_INDEX": "0", "SCORER_SHARD_COUNT": count}[k], true
	})
	if err != nil || sh == nil || sh.Count != job.Spec.Completions {
		t.Errorf("sharded job: SCORER_SHARD_COUNT %q gives shard %+v (%v), want a count equal to completions %d", count, sh, err, job.Spec.Completions)
	}
}
