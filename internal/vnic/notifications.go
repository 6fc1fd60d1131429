package vnic

import (
	"context"

	"github.com/container-vnic/container_vnic_exporter/internal/rtnl"
)

// DefaultEventBuffer is the receive buffer asked for the notification
// socket: room for tens of thousands of link events between two reads.
const DefaultEventBuffer = rtnl.DefaultEventBuffer

// Notification is one link or namespace-id notification, with what a change
// stream needs to tell which namespace it concerns (From: Resolver.IsHost
// tells the host's own events).
type Notification = rtnl.Notification

// Link is a link as a notification describes it.
type Link = rtnl.Link

// ErrOverflow is returned by ReadNotifications when the kernel dropped
// notifications (ENOBUFS): what they would have told must be found out
// afresh. The resolver's cache has been emptied; the socket stays usable.
var ErrOverflow = rtnl.ErrOverflow

// ReadNotifications waits for notifications on the resolver's own socket,
// the one that keeps ResolveAll's cache exact, applies each queued one to
// the cache and hands it to f, in order. A change stream reads them here
// rather than from a socket of its own: one socket per process, and the
// cache hears of every change as it happens instead of at the next
// ResolveAll. Notifications a ResolveAll reads in the meantime are applied
// there and not handed to f: its result already shows them. It fails when
// the resolver has no notification socket (CacheError), and returns
// ctx.Err() when ctx ends first.
func (r *Resolver) ReadNotifications(ctx context.Context, f func(Notification)) error {
	if r.watcher == nil {
		return r.watchErr
	}
	for {
		if err := r.watcher.Wait(ctx); err != nil {
			return err
		}
		var batch []Notification
		r.mu.Lock()
		err := r.drainInto(func(n Notification) { batch = append(batch, n) })
		r.mu.Unlock()
		for _, n := range batch {
			f(n)
		}
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			return nil
		}
	}
}

// drainInto applies every queued notification to the cache and hands it to
// f (when not nil). When notifications were lost (ErrOverflow) or the
// socket failed, the cache is emptied. r.mu is held.
func (r *Resolver) drainInto(f func(Notification)) error {
	err := r.watcher.Drain(func(n Notification) {
		r.cache.apply(n, r.isHostNSID)
		if f != nil {
			f(n)
		}
	})
	if err != nil {
		r.cache.reset()
	}
	return err
}
