package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/queue/queuetest"
)

func TestMemoryConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, maxBytes int64) queue.Queue {
		return queue.NewMemory(maxBytes, false)
	})
}

func TestMemoryDropNewest(t *testing.T) {
	q := queue.NewMemory(5, true)
	b := event.NewBatch(1, 4)
	b.Append([]byte("full"))
	if err := q.Push(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(context.Background(), b); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	if st := q.Stats(); st.Events != 1 || st.Bytes != 5 {
		t.Errorf("stats = %+v", st)
	}
}
