package coalesce

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runLog records when fn ran, for assertions on the timing of runs.
type runLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *runLog) record() {
	r.mu.Lock()
	r.times = append(r.times, time.Now())
	r.mu.Unlock()
}

func (r *runLog) snapshot() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// waitRuns waits until at least n runs happened, failing after a generous bound.
func (r *runLog) waitRuns(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.snapshot(); len(got) >= n {
			return got
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("fn ran %d times, want at least %d", len(r.snapshot()), n)
	return nil
}

func TestSingleTriggerRunsAfterHoldOff(t *testing.T) {
	var log runLog
	holdOff := 20 * time.Millisecond
	c := New(holdOff, time.Second, log.record)
	defer c.Stop()
	start := time.Now()
	c.Trigger()
	runs := log.waitRuns(t, 1)
	if waited := runs[0].Sub(start); waited < holdOff {
		t.Errorf("fn ran %v after the trigger, before the hold-off of %v", waited, holdOff)
	}
	time.Sleep(5 * holdOff)
	if n := len(log.snapshot()); n != 1 {
		t.Errorf("one trigger gave %d runs, want 1", n)
	}
}

func TestBurstBecomesOneRun(t *testing.T) {
	var log runLog
	holdOff := 40 * time.Millisecond
	c := New(holdOff, 10*time.Second, log.record)
	defer c.Stop()
	var last time.Time
	for i := 0; i < 20; i++ {
		c.Trigger()
		last = time.Now()
		time.Sleep(time.Millisecond)
	}
	runs := log.waitRuns(t, 1)
	if runs[0].Sub(last) < holdOff {
		t.Errorf("fn ran %v after the last trigger, before the hold-off of %v", runs[0].Sub(last), holdOff)
	}
	time.Sleep(5 * holdOff)
	if n := len(log.snapshot()); n != 1 {
		t.Errorf("a burst of 20 triggers gave %d runs, want 1", n)
	}
}

// TestMaxDelayBoundsTheWait keeps triggering faster than the hold-off, so only the
// maximum delay can start a run.
func TestMaxDelayBoundsTheWait(t *testing.T) {
	var log runLog
	maxDelay := 100 * time.Millisecond
	c := New(50*time.Millisecond, maxDelay, log.record)
	defer c.Stop()
	start := time.Now()
	stopAt := start.Add(350 * time.Millisecond)
	for time.Now().Before(stopAt) {
		c.Trigger()
		time.Sleep(2 * time.Millisecond)
	}
	runs := log.waitRuns(t, 1)
	first := runs[0].Sub(start)
	if first < maxDelay || first > maxDelay+150*time.Millisecond {
		t.Errorf("first run %v after the first trigger, want about the maximum delay %v", first, maxDelay)
	}
	// Triggers kept coming for 350 ms, so the maximum delay alone must have caused
	// runs while they came: about three, and never one per trigger.
	during := 0
	for _, r := range runs {
		if r.Before(stopAt) {
			during++
		}
	}
	if during < 2 || during > 4 {
		t.Errorf("%d runs during 350 ms of continuous triggers, want 2-4 (one per maximum delay)", during)
	}
}

func TestRunsNeverOverlap(t *testing.T) {
	var active, maxActive, runs atomic.Int32
	c := New(time.Millisecond, 5*time.Millisecond, func() {
		n := active.Add(1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		active.Add(-1)
		runs.Add(1)
	})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				c.Trigger()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	c.Stop()
	if maxActive.Load() != 1 {
		t.Errorf("up to %d runs overlapped, want 1", maxActive.Load())
	}
	if runs.Load() < 2 {
		t.Errorf("%d runs for 200 triggers over about 50 ms, want several", runs.Load())
	}
}

// TestTriggersDuringRunGiveOneMoreRun holds the first run open while triggers arrive:
// they must give exactly one further run.
func TestTriggersDuringRunGiveOneMoreRun(t *testing.T) {
	var log runLog
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var calls atomic.Int32
	holdOff := 5 * time.Millisecond
	c := New(holdOff, 20*time.Millisecond, func() {
		log.record()
		if calls.Add(1) == 1 {
			started <- struct{}{}
			<-release
		}
	})
	defer c.Stop()
	c.Trigger()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first run did not start")
	}
	for i := 0; i < 10; i++ {
		c.Trigger()
	}
	time.Sleep(10 * holdOff)
	if n := len(log.snapshot()); n != 1 {
		t.Fatalf("%d runs while the first was still running, want 1", n)
	}
	close(release)
	log.waitRuns(t, 2)
	time.Sleep(10 * holdOff)
	if n := len(log.snapshot()); n != 2 {
		t.Errorf("triggers during a run gave %d runs in all, want 2", n)
	}
}

func TestStopCancelsPendingRunAndWaitsForRunning(t *testing.T) {
	var runs atomic.Int32
	c := New(30*time.Millisecond, time.Second, func() { runs.Add(1) })
	c.Trigger()
	c.Stop()
	c.Trigger()
	time.Sleep(100 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Errorf("%d runs after Stop, want 0", n)
	}

	var finished atomic.Bool
	started := make(chan struct{})
	c = New(0, 0, func() {
		close(started)
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
	})
	c.Trigger()
	<-started
	c.Stop()
	if !finished.Load() {
		t.Error("Stop returned while fn was still running")
	}
}

func TestNoTriggerNoRun(t *testing.T) {
	var runs atomic.Int32
	c := New(time.Millisecond, time.Millisecond, func() { runs.Add(1) })
	time.Sleep(20 * time.Millisecond)
	c.Stop()
	if runs.Load() != 0 {
		t.Errorf("%d runs without a trigger", runs.Load())
	}
}

func TestMaxDelayBelowHoldOffIsRaised(t *testing.T) {
	c := New(30*time.Millisecond, 5*time.Millisecond, func() {})
	defer c.Stop()
	if c.maxDelay != 30*time.Millisecond {
		t.Errorf("maxDelay %v, want it raised to the hold-off", c.maxDelay)
	}
	c = New(-time.Second, -time.Second, func() {})
	defer c.Stop()
	if c.holdOff != 0 || c.maxDelay != 0 {
		t.Errorf("negative durations gave holdOff %v maxDelay %v, want 0", c.holdOff, c.maxDelay)
	}
}
