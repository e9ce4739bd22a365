package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// column is one figure of a scenario's table.
type column struct {
	header string
	// figure is the key in a round's figures.
	figure string
	// cell renders the figure's summary over the rounds (or its values, for sums).
	cell func(s summary, values []float64) string
}

func medianCol(header, figure, format string) column {
	return column{header, figure, func(s summary, _ []float64) string { return num(format, s.Median) }}
}

func rangeCol(header, figure, format string) column {
	return column{header, figure, func(s summary, _ []float64) string {
		if s.N == 0 {
			return "-"
		}
		return num(format, s.Min) + "–" + num(format, s.Max)
	}}
}

func spreadCol(figure string) column {
	return column{"spread", figure, func(s summary, _ []float64) string { return num("%.0f%%", 100*s.spread()) }}
}

func sumCol(header, figure string) column {
	return column{header, figure, func(_ summary, values []float64) string {
		total := 0.0
		for _, v := range values {
			total += v
		}
		return num("%.0f", total)
	}}
}

// columns returns the table layout of a load kind.
func columns(kind loadKind) []column {
	cpu := medianCol("CPU µs/req", "cpu", "%.1f")
	errs := sumCol("errors", "errors")
	switch kind {
	case h2Load:
		return []column{medianCol("req/s", "rps", "%.0f"), rangeCol("req/s range", "rps", "%.0f"), spreadCol("rps"),
			medianCol("mean ms", "mean", "%.3f"), medianCol("max ms", "max", "%.2f"), cpu, errs}
	case openLoad:
		return []column{medianCol("req/s", "rps", "%.0f"), medianCol("p50 ms", "p50", "%.3f"), medianCol("p90 ms", "p90", "%.3f"),
			medianCol("p99 ms", "p99", "%.3f"), rangeCol("p99 range", "p99", "%.3f"), medianCol("p99.9 ms", "p99.9", "%.3f"),
			medianCol("max ms", "max", "%.2f"), cpu, errs}
	default:
		return []column{medianCol("req/s", "rps", "%.0f"), rangeCol("req/s range", "rps", "%.0f"), spreadCol("rps"),
			medianCol("p50 ms", "p50", "%.3f"), medianCol("p99 ms", "p99", "%.3f"), cpu, errs}
	}
}

// ratioFigure is a figure whose ratios a scenario prints, with its caption.
type ratioFigure struct {
	figure, caption string
}

// ratioFigures returns the figures compared pairwise in a scenario.
func ratioFigures(sc scenario) []ratioFigure {
	switch {
	case sc.load == openLoad:
		return []ratioFigure{{"p99", "median p99 latency (lower is better)"}}
	case sc.pinned:
		return []ratioFigure{{"cpu", "median CPU time per request (lower is better)"}, {"rps", "median req/s (higher is better)"}}
	default:
		return []ratioFigure{{"rps", "median req/s (higher is better)"}}
	}
}

// writeScenario prints one scenario: what it is, the table of medians and ranges,
// the ratio matrices and the notes.
func writeScenario(w io.Writer, res *scenarioResult) {
	sc := res.scenario
	fmt.Fprintf(w, "## %s\n\n%s\n\n", sc.title, sc.about)
	cols := columns(sc.load)
	headers := []string{"target"}
	for _, c := range cols {
		headers = append(headers, c.header)
	}
	writeRow(w, headers)
	writeRow(w, separators(len(headers)))
	for _, name := range sc.targets {
		row := []string{name}
		for _, c := range cols {
			values := figureValues(res.samples[name], c.figure)
			row = append(row, c.cell(summarize(values), values))
		}
		writeRow(w, row)
	}
	for _, rf := range ratioFigures(sc) {
		medians := map[string]float64{}
		for _, name := range sc.targets {
			medians[name] = summarize(figureValues(res.samples[name], rf.figure)).Median
		}
		fmt.Fprintf(w, "\nRatios of %s, row ÷ column:\n\n", rf.caption)
		writeRow(w, append([]string{""}, sc.targets...))
		writeRow(w, separators(len(sc.targets)+1))
		matrix := ratios(sc.targets, medians)
		for _, a := range sc.targets {
			row := []string{a}
			for _, b := range sc.targets {
				row = append(row, num("%.2f", matrix[a][b]))
			}
			writeRow(w, row)
		}
	}
	for _, note := range res.notes {
		fmt.Fprintf(w, "\n%s\n", note)
	}
	fmt.Fprintln(w)
}

// figureValues collects one figure over the rounds; a round without it gives NaN.
func figureValues(rounds []map[string]float64, figure string) []float64 {
	out := make([]float64, 0, len(rounds))
	for _, f := range rounds {
		v, ok := f[figure]
		if !ok {
			v = math.NaN()
		}
		out = append(out, v)
	}
	return out
}

// num formats v, or "-" when it is not a number.
func num(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func separators(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "---"
	}
	return out
}
