package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// row is one figure of the results table.
type row struct {
	scenario, figure, value, note string
}

// report gathers the figures of every scenario and the sanity checks that failed.
type report struct {
	mu       sync.Mutex
	rows     []row
	failures []string
}

// add records a figure.
func (r *report) add(scenario, figure, value, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row{scenario, figure, value, note})
}

// check records a failed sanity check when ok is false: something is clearly
// broken, so the run must exit non-zero. Timing figures are never checked.
func (r *report) check(ok bool, scenario, format string, args ...any) {
	if ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, scenario+": "+fmt.Sprintf(format, args...))
}

// failed reports whether any check failed.
func (r *report) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

// write prints the Markdown table, the command and the failed checks.
func (r *report) write(w io.Writer, header []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range header {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | figure | value | notes |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, row := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(row.scenario), cell(row.figure), cell(row.value), cell(row.note))
	}
	if len(r.failures) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "**Failed sanity checks:**")
		fmt.Fprintln(w)
		for _, f := range r.failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

// cell escapes what would break a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// percent formats a share as a percentage with two decimals.
func percent(share float64) string { return fmt.Sprintf("%.2f%%", 100*share) }

// ms formats a duration in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// seconds formats a duration in seconds with two decimals.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// share is part/whole, zero when whole is zero.
func share(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}
