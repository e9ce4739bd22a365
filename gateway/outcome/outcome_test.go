package outcome

import (
	"sync"
	"testing"
	"time"
)

func TestRecorderCountsAndQuantiles(t *testing.T) {
	var r Recorder
	for i := 0; i < 98; i++ {
		r.Record(3*time.Millisecond, false)
	}
	r.Record(400*time.Millisecond, true)
	r.Record(20*time.Second, true)
	got := r.Totals()
	if got.Requests != 100 || got.Errors != 2 {
		t.Fatalf("totals = %d requests, %d errors; want 100, 2", got.Requests, got.Errors)
	}
	if p50 := got.Quantile(0.5); p50 != 5*time.Millisecond {
		t.Errorf("p50 = %v, want the 5ms bucket", p50)
	}
	if p99 := got.Quantile(0.99); p99 != 500*time.Millisecond {
		t.Errorf("p99 = %v, want the 500ms bucket", p99)
	}
	if p100 := got.Quantile(1); p100 != 20*time.Second {
		t.Errorf("p100 = %v, want twice the last bound", p100)
	}
}

func TestSubAndAdd(t *testing.T) {
	var r Recorder
	r.Record(time.Millisecond, false)
	before := r.Totals()
	r.Record(time.Second, true)
	r.Record(time.Second, false)
	d := r.Totals().Sub(before)
	if d.Requests != 2 || d.Errors != 1 || d.Quantile(1) != time.Second {
		t.Fatalf("difference = %+v", d)
	}
	// A source that restarted counts from zero: the newer reading stands alone.
	restarted := Totals{Requests: 1, Errors: 0, Latency: make([]int64, Buckets)}
	if got := restarted.Sub(r.Totals()); got.Requests != 1 {
		t.Fatalf("after a restart: %+v", got)
	}
	if sum := d.Add(before); sum.Requests != 3 || sum.Errors != 1 {
		t.Fatalf("sum = %+v", sum)
	}
	if (Totals{}).Quantile(0.99) != 0 {
		t.Fatal("empty totals have a quantile")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				r.Record(time.Duration(i)*time.Microsecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	if got := r.Totals(); got.Requests != 8000 || got.Errors != 800 {
		t.Fatalf("totals = %+v", got)
	}
}

func BenchmarkRecord(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(3*time.Millisecond, false)
		}
	})
}
