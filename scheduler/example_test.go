package scheduler_test

import (
	"fmt"
	"time"

	"github.com/adtech/scorer/scheduler"
)

// A nightly job at 02:30 in Berlin around the spring DST change: 02:30 does
// not exist on March 28th, 2021, and the job runs when the clocks jump.
func ExampleSpec_Between() {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	sp, err := scheduler.ParseSpec("30 2 * * *", loc)
	if err != nil {
		panic(err)
	}
	from := time.Date(2021, 3, 26, 12, 0, 0, 0, loc)
	for _, t := range sp.Between(from, from.AddDate(0, 0, 3)) {
		fmt.Println(t.Format("Mon 2006-01-02 15:04 MST"))
	}
	// Output:
	// Sat 2021-03-27 02:30 CET
	// Sun 2021-03-28 03:00 CEST
	// Mon 2021-03-29 02:30 CEST
}
