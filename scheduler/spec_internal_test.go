package scheduler

import (
	"testing"
	"time"
)

// resolve must agree with its definition, checked by brute force: the
// earliest instant (on a one-minute grid) whose wall clock shows the wall
// time or later, around DST changes of zones with one-hour, half-hour and
// whole-day jumps, and one where midnight is skipped.
func TestResolveMatchesBruteForce(t *testing.T) {
	tests := []struct {
		zone string
		day  string // a day with a DST change (or a skipped day)
	}{
		{"Europe/Berlin", "2021-03-28"},
		{"Europe/Berlin", "2021-10-31"},
		{"America/New_York", "2021-03-14"},
		{"America/New_York", "2021-11-07"},
		{"Australia/Lord_Howe", "2021-10-03"},
		{"Australia/Lord_Howe", "2021-04-04"},
		{"America/Sao_Paulo", "2018-11-04"}, // midnight skipped
		{"America/Sao_Paulo", "2019-02-16"},
		{"Pacific/Apia", "2011-12-30"}, // the whole day skipped
		{"UTC", "2021-03-28"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.day, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			day, _ := time.Parse(time.DateOnly, tt.day)
			for n := day.Add(-2 * time.Hour); n.Before(day.Add(26 * time.Hour)); n = n.Add(15 * time.Minute) {
				want := bruteResolve(n, loc)
				if got := resolve(n, loc); !got.Equal(want) {
					t.Fatalf("wall time %s: resolve = %s, brute force = %s", n.Format("2006-01-02 15:04"), got.In(loc), want.In(loc))
				}
			}
		})
	}
}

func bruteResolve(n time.Time, loc *time.Location) time.Time {
	for t := n.Add(-27 * time.Hour); ; t = t.Add(time.Minute) {
		if !naive(t.In(loc)).Before(n) {
			return t.In(loc)
		}
	}
}
