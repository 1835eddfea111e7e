package windows

import "cmp"

// Aggregation folds the values of a window into an accumulator of type A.
//
// The functions are called from the task goroutine only and must not keep
// references to acc after returning the new accumulator (the operator
// stores the accumulator through its serde after every call). Add and Merge
// may modify and return their first argument.
type Aggregation[V, A any] struct {
	// Init returns the accumulator of an empty window. Required.
	Init func() A
	// Add folds one value into acc. Required.
	Add func(acc A, v V) A
	// Merge combines the accumulators of two windows; a is the window
	// that starts earlier. Required for session windows and for
	// Commutative.
	Merge func(a, b A) A
	// Commutative says that the result does not depend on the order in
	// which values are added: adding them in any order, or adding them to
	// two accumulators in any split and merging those, gives the same
	// accumulator. Hopping windows then keep one accumulator per key and
	// advance-long pane, add each record to its pane only, and merge a
	// window's size/advance panes when it closes (Flink's window
	// slicing), instead of adding each record to every window it is in.
	// Count, Sum, Min and Max set it.
	Commutative bool
}

// Number is the constraint of [Sum].
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// Maybe is an accumulator that may be empty: the accumulator of [Min],
// [Max] and [Reduce]. Set is false only for a window with no elements,
// which the operator never emits. It encodes with serde.JSON.
type Maybe[T any] struct {
	Value T    `json:"v"`
	Set   bool `json:"set"`
}

// Count counts the elements of a window.
func Count[V any]() Aggregation[V, int64] {
	return Aggregation[V, int64]{
		Init:        func() int64 { return 0 },
		Add:         func(acc int64, _ V) int64 { return acc + 1 },
		Merge:       func(a, b int64) int64 { return a + b },
		Commutative: true,
	}
}

// Sum adds the elements of a window (with the overflow behaviour of N).
func Sum[N Number]() Aggregation[N, N] {
	return Aggregation[N, N]{
		Init:        func() N { return 0 },
		Add:         func(acc N, v N) N { return acc + v },
		Merge:       func(a, b N) N { return a + b },
		Commutative: true,
	}
}

// Reduce combines the elements of a window with fn, which must be
// associative for session windows (merged sessions are combined as
// fn(earlier, later)).
func Reduce[V any](fn func(a, b V) V) Aggregation[V, Maybe[V]] {
	return Aggregation[V, Maybe[V]]{
		Init: func() Maybe[V] { return Maybe[V]{} },
		Add: func(acc Maybe[V], v V) Maybe[V] {
			if !acc.Set {
				return Maybe[V]{Value: v, Set: true}
			}
			return Maybe[V]{Value: fn(acc.Value, v), Set: true}
		},
		Merge: func(a, b Maybe[V]) Maybe[V] {
			switch {
			case !a.Set:
				return b
			case !b.Set:
				return a
			}
			return Maybe[V]{Value: fn(a.Value, b.Value), Set: true}
		},
	}
}

// Min keeps the smallest element of a window (cmp.Compare order, so a NaN
// is smaller than every number).
func Min[T cmp.Ordered]() Aggregation[T, Maybe[T]] {
	agg := Reduce(func(a, b T) T {
		if cmp.Compare(b, a) < 0 {
			return b
		}
		return a
	})
	agg.Commutative = true
	return agg
}

// Max keeps the largest element of a window (cmp.Compare order).
func Max[T cmp.Ordered]() Aggregation[T, Maybe[T]] {
	agg := Reduce(func(a, b T) T {
		if cmp.Compare(b, a) > 0 {
			return b
		}
		return a
	})
	agg.Commutative = true
	return agg
}

// Collect keeps every element of a window, for a process-window function
// that needs the whole window: the emitted Result.Value is the window's
// elements in arrival order; when a record merges sessions, the list is
// the earlier sessions' lists in start order followed by that record. The whole list is stored in the window
// state and re-encoded on every Add, so use it for small windows only.
func Collect[V any]() Aggregation[V, []V] {
	return Aggregation[V, []V]{
		Init:  func() []V { return nil },
		Add:   func(acc []V, v V) []V { return append(acc, v) },
		Merge: func(a, b []V) []V { return append(a, b...) },
	}
}
