package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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

// deploy/kubernetes/deployment-serve.yaml agrees with scorer serve: pods
// get longer than serve.shutdown_timeout to answer the calls in flight,
// readiness is /readyz (503 from SIGTERM on), and the tokens come from a
// secret through the variable the server reads.
func TestServeDeployment(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/deployment-serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	var d struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Template struct {
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Args []string `yaml:"args"`
						Env  []struct {
							Name      string `yaml:"name"`
							ValueFrom *struct {
								SecretKeyRef *struct{ Name string } `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
						ReadinessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &d); err != nil || d.Kind != "Deployment" || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("deployment-serve.yaml: %v %+v", err, d)
	}
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	if time.Duration(ps.Grace)*time.Second <= app.Default().Serve.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than serve.shutdown_timeout %s", ps.Grace, app.Default().Serve.ShutdownTimeout)
	}
	if !slices.Equal(c.Args, []string{"serve"}) || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("args %v, readiness %q; want serve and /readyz", c.Args, c.ReadinessProbe.HTTPGet.Path)
	}
	secret := false
	for _, e := range c.Env {
		secret = secret || (e.Name == app.ServeTokensEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
	}
	if !secret {
		t.Errorf("no %s from a secret", app.ServeTokensEnv)
	}
	if len(docs) < 2 || !strings.Contains(docs[1], "kind: Service") {
		t.Error("no Service")
	}
}
