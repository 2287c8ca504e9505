// SPDX-License-Identifier: GPL-2.0
/*
 * racebench: four seeded races for ifstress, for disposable QEMU guests only.
 *
 * Each race window is opened by op A inside A's own syscall and runs as a
 * task_work on the task that issued A, when that syscall returns to user
 * mode: sleepable, outside RTNL, not an RCU reader. So synchronize_net() in
 * the destroy path (op B) does not wait for it, a delay widens the window
 * instead of serialising it, and one sequential loop can never hit it (A's
 * syscall returns only after its window closed).
 *
 * State is never really freed, so a hit is detected deterministically and is
 * never a real use-after-free: slots live in fixed pools, each with a
 * generation. "Free" unlinks the slot and bumps the generation. A window
 * captures (slot, generation) without a reference (the bug) and, after
 * window_us, reports a hit if the generation moved. With fixed=1 the same
 * path also holds a reference for the window, so the generation only moves
 * when the window has ended, and a free that finds an open window counts as
 * "averted".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/kernel.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/hash.h>
#include <linux/spinlock.h>
#include <linux/sched.h>
#include <linux/task_work.h>
#include <linux/delay.h>
#include <linux/kprobes.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/nsproxy.h>
#include <linux/rcupdate.h>
#include <net/net_namespace.h>
#include <net/rtnetlink.h>
#include <linux/version.h>

enum rb_id { RB_VMOVE, RB_OUTPATH, RB_MEDIA, RB_TUN, RB_NR };

enum { RB_HIT_PANIC, RB_HIT_WARN, RB_HIT_COUNT };

#define RB_ETH_P_IFSTRESS	0x88b5	/* ifstress's raw ethertype */
#define RB_DEV_SLOTS		4096
#define RB_NET_SLOTS		1024
#define RB_MAX_PENDING		2048	/* windows queued at once */

static char *scenarios = "vmove,outpath,media,tun";
module_param(scenarios, charp, 0444);
MODULE_PARM_DESC(scenarios, "armed scenarios: comma list of vmove,outpath,media,tun");

/*
 * 5 ms, not 2: outpath's free comes after dev_close's and unregister's
 * synchronize_net() and flush_all_backlogs(), which under TCG take longer
 * than 2 ms, so at 2 ms outpath hit only a few times in two minutes.
 */
static unsigned int window_us = 5000;
module_param(window_us, uint, 0444);
MODULE_PARM_DESC(window_us, "widened race window in microseconds (0: none)");

/*
 * A namespace is freed from the single-threaded, batched netns workqueue,
 * after pre_exit, a full RCU grace period and every device-level exit: in a
 * TCG guest 100 ms to 1 s after its last reference went. tun's window is
 * window_us times this, so that it can see the free at all.
 */
static unsigned int tun_window_scale = 100;
module_param(tun_window_scale, uint, 0444);
MODULE_PARM_DESC(tun_window_scale, "tun's window is window_us times this");

static bool fixed;
module_param(fixed, bool, 0444);
MODULE_PARM_DESC(fixed, "hold a reference across each window (the fix)");

static char *hit = "panic";
module_param(hit, charp, 0444);
MODULE_PARM_DESC(hit, "on a hit: panic, warn (once per scenario) or count");

static int rb_hit_mode;

/*
 * Ops made to fail on purpose, so that a verdict's work-equivalence rule can
 * be tested on real guests: "move" marks every interface netns-local, so
 * dev_change_net_namespace() refuses to move it (EINVAL), the way a patch
 * that broke if_vmove would make every move fail.
 */
static char *break_ops = "";
module_param_named(break, break_ops, charp, 0444);
MODULE_PARM_DESC(break, "ops made to fail on purpose: move (or empty)");

static bool rb_break_move;

struct rb_scen {
	const char *name;
	const char *what;	/* the state a hit found freed */
	bool armed;
	atomic_t warned;
	atomic_long_t entered, hits, averted, skipped;
};

static struct rb_scen rb_scen[RB_NR] = {
	[RB_VMOVE]	= { .name = "vmove",	.what = "interface state" },
	[RB_OUTPATH]	= { .name = "outpath",	.what = "address-family state" },
	[RB_MEDIA]	= { .name = "media",	.what = "interface state" },
	[RB_TUN]	= { .name = "tun",	.what = "namespace state" },
};

/* ---- slot pools ---------------------------------------------------------- */

#define RB_LINKED	0x1	/* in the lookup table: the object is alive */
#define RB_DYING	0x2	/* net: pre_exit ran */

struct rb_slot {
	struct hlist_node node;
	const void *key;	/* the net_device or the net */
	unsigned int gen;	/* bumped when the slot is really released */
	unsigned int refs;	/* 1 while linked, +1 per fixed-mode window */
	unsigned int flags;
	unsigned short open[RB_NR];	/* fixed-mode windows inside their window */
	int next_free;
};

/*
 * One lock per pool: it guards the hash buckets and every slot's fields. A
 * window's end check reads a slot that may meanwhile belong to another key,
 * so a per-bucket lock would not cover it.
 */
struct rb_pool {
	const char *name;
	spinlock_t lock;
	struct rb_slot *slots;
	struct hlist_head *hash;
	unsigned int nr, hash_bits;
	int free_head;
};

static struct rb_pool rb_devs = { .name = "device" };
/*
 * Per-address-family data of an interface (FreeBSD's if_afdata, Linux's
 * inet6_dev): unlike the device state it dies at every unregister, a
 * namespace move included, as Linux frees ip6_ptr and FreeBSD's if_vmove
 * detaches the domains. outpath's windows use it.
 */
static struct rb_pool rb_afdata = { .name = "afdata" };
static struct rb_pool rb_nets = { .name = "namespace" };

static int rb_pool_init(struct rb_pool *p, unsigned int nr, unsigned int bits)
{
	unsigned int i;

	spin_lock_init(&p->lock);
	p->slots = kvcalloc(nr, sizeof(*p->slots), GFP_KERNEL);
	p->hash = kvcalloc(1U << bits, sizeof(*p->hash), GFP_KERNEL);
	if (!p->slots || !p->hash) {
		kvfree(p->slots);
		kvfree(p->hash);
		return -ENOMEM;
	}
	p->nr = nr;
	p->hash_bits = bits;
	for (i = 0; i < nr; i++)
		p->slots[i].next_free = i + 1 < nr ? i + 1 : -1;
	p->free_head = 0;
	return 0;
}

static void rb_pool_destroy(struct rb_pool *p)
{
	kvfree(p->slots);
	kvfree(p->hash);
}

static struct rb_slot *rb_lookup(struct rb_pool *p, const void *key)
{
	struct rb_slot *s;

	lockdep_assert_held(&p->lock);
	hlist_for_each_entry(s, &p->hash[hash_ptr(key, p->hash_bits)], node)
		if (s->key == key)
			return s;
	return NULL;
}

/* Drop one reference; the last one really releases the slot. */
static void rb_put_locked(struct rb_pool *p, struct rb_slot *s)
{
	if (--s->refs)
		return;
	s->gen++;
	s->key = NULL;
	s->flags = 0;
	s->next_free = p->free_head;
	p->free_head = s - p->slots;
}

/* Link state for @key. Returns true if it already existed. */
static bool rb_slot_get_or_create(struct rb_pool *p, const void *key)
{
	struct rb_slot *s;
	unsigned long flags;
	bool existed = false;

	spin_lock_irqsave(&p->lock, flags);
	if (rb_lookup(p, key)) {
		existed = true;
	} else if (p->free_head >= 0) {
		s = &p->slots[p->free_head];
		p->free_head = s->next_free;
		s->key = key;
		s->refs = 1;
		s->flags = RB_LINKED;
		memset(s->open, 0, sizeof(s->open));
		hlist_add_head(&s->node, &p->hash[hash_ptr(key, p->hash_bits)]);
	} else {
		pr_warn_once("%s pool exhausted; windows on new objects are skipped\n",
			     p->name);
	}
	spin_unlock_irqrestore(&p->lock, flags);
	return existed;
}

/*
 * The free path (op B): unlink and drop the registration reference. In
 * broken mode that bumps the generation at once; in fixed mode a window's
 * reference defers it, and each window still inside its window was a hit
 * that the reference averted.
 */
static void rb_slot_free(struct rb_pool *p, const void *key)
{
	struct rb_slot *s;
	unsigned long flags;
	int i;

	spin_lock_irqsave(&p->lock, flags);
	s = rb_lookup(p, key);
	if (s) {
		hlist_del_init(&s->node);
		s->flags &= ~RB_LINKED;
		for (i = 0; i < RB_NR; i++)
			if (s->open[i])
				atomic_long_add(s->open[i], &rb_scen[i].averted);
		rb_put_locked(p, s);
	}
	spin_unlock_irqrestore(&p->lock, flags);
}

static void rb_slot_mark_dying(struct rb_pool *p, const void *key)
{
	struct rb_slot *s;
	unsigned long flags;

	spin_lock_irqsave(&p->lock, flags);
	s = rb_lookup(p, key);
	if (s)
		s->flags |= RB_DYING;
	spin_unlock_irqrestore(&p->lock, flags);
}

/* ---- hits ------------------------------------------------------------------ */

/* Inlined into the per-scenario functions, so panic's caller names the race. */
static __always_inline void rb_hit(enum rb_id id)
{
	struct rb_scen *s = &rb_scen[id];

	atomic_long_inc(&s->hits);
	if (rb_hit_mode == RB_HIT_PANIC)
		panic("racebench: seeded race %s hit: %s freed during its window\n",
		      s->name, s->what);
	if (rb_hit_mode == RB_HIT_WARN && !atomic_xchg(&s->warned, 1))
		WARN(1, "racebench: seeded race %s hit: %s freed during its window\n",
		     s->name, s->what);
}

static noinline void rb_hit_vmove(void)		{ rb_hit(RB_VMOVE); }
static noinline void rb_hit_outpath(void)	{ rb_hit(RB_OUTPATH); }
static noinline void rb_hit_media(void)		{ rb_hit(RB_MEDIA); }
static noinline void rb_hit_tun(void)		{ rb_hit(RB_TUN); }

static void rb_report_hit(enum rb_id id)
{
	switch (id) {
	case RB_VMOVE:
		rb_hit_vmove();
		break;
	case RB_OUTPATH:
		rb_hit_outpath();
		break;
	case RB_MEDIA:
		rb_hit_media();
		break;
	default:
		rb_hit_tun();
		break;
	}
}

/* ---- windows --------------------------------------------------------------- */

struct rb_window {
	struct callback_head cb;
	struct rb_pool *pool;
	enum rb_id id;
	int slot;
	unsigned int gen;	/* the slot's generation when captured */
	bool ref;		/* holds a slot reference (fixed=1) */
	bool open;		/* counted in the slot's open[id] */
};

static atomic_t rb_pending = ATOMIC_INIT(0);

/* A task that will return to user mode, from a context we may queue in. */
static bool rb_user_context(void)
{
	return !(current->flags & PF_KTHREAD) && current->mm &&
	       !in_hardirq() && !in_serving_softirq();
}

#define RB_MAX_WINDOW_US	(10 * USEC_PER_SEC)

static unsigned long rb_tun_window_us(void)
{
	return min_t(u64, (u64)window_us * tun_window_scale, RB_MAX_WINDOW_US);
}

static void rb_delay(unsigned long w)
{
	if (w >= 20)
		usleep_range(w, w + w / 8 + 1);
	else if (w)
		udelay(w);
}

/*
 * End of a window: was its slot released meanwhile? Then drop what the
 * window held. The generation is read before the put, which in fixed mode
 * may be the one releasing the slot.
 */
static bool rb_window_close(struct rb_window *w)
{
	struct rb_pool *p = w->pool;
	struct rb_slot *s = &p->slots[w->slot];
	unsigned long flags;
	bool freed;

	spin_lock_irqsave(&p->lock, flags);
	freed = s->gen != w->gen;
	if (w->open)
		s->open[w->id]--;
	if (w->ref)
		rb_put_locked(p, s);
	spin_unlock_irqrestore(&p->lock, flags);
	return freed;
}

/*
 * tun: let RCU-deferred socket frees that were already pending finish (the
 * tun socket's free drops its namespace reference), then open the window
 * only if the namespace is still alive and nobody has decided its death:
 * not freed, not past pre_exit, and its count not already zero (cleanup_net
 * queued but pre_exit not run yet: without this check a close that dropped
 * the last reference would "race" with itself).
 */
static bool rb_tun_window_ready(struct rb_window *w)
{
	struct rb_pool *p = w->pool;
	struct rb_slot *s = &p->slots[w->slot];
	unsigned long flags;
	bool ok;

	rcu_barrier();
	spin_lock_irqsave(&p->lock, flags);
	/* Linked means our pernet exit has not run: the net is still there. */
	ok = s->gen == w->gen && (s->flags & RB_LINKED) &&
	     !(s->flags & RB_DYING) && check_net(s->key);
	if (ok && w->ref) {
		s->open[w->id]++;
		w->open = true;
	}
	spin_unlock_irqrestore(&p->lock, flags);
	return ok;
}

static void rb_window_fn(struct callback_head *cb)
{
	struct rb_window *w = container_of(cb, struct rb_window, cb);
	struct rb_scen *sc = &rb_scen[w->id];

	if (w->id == RB_TUN && !rb_tun_window_ready(w)) {
		atomic_long_inc(&sc->skipped);
		rb_window_close(w);
		goto out;
	}
	atomic_long_inc(&sc->entered);
	rb_delay(w->id == RB_TUN ? rb_tun_window_us() : window_us);
	if (rb_window_close(w))
		rb_report_hit(w->id);
out:
	kfree(w);
	atomic_dec(&rb_pending);
	/* Last: rmmod cannot proceed while a window is pending. */
	module_put(THIS_MODULE);
}

/*
 * Op A: capture the slot of @key and queue the window on current, to run
 * when its syscall returns to user mode.
 */
static void rb_queue_window(enum rb_id id, struct rb_pool *p, const void *key,
			    gfp_t gfp)
{
	struct rb_scen *sc = &rb_scen[id];
	struct rb_window *w;
	struct rb_slot *s;
	unsigned long flags;

	if (!rb_user_context())
		goto skip;
	if (atomic_inc_return(&rb_pending) > RB_MAX_PENDING)
		goto skip_pending;
	if (!try_module_get(THIS_MODULE))
		goto skip_pending;
	w = kzalloc(sizeof(*w), gfp);
	if (!w)
		goto skip_module;
	init_task_work(&w->cb, rb_window_fn);
	w->pool = p;
	w->id = id;

	spin_lock_irqsave(&p->lock, flags);
	s = rb_lookup(p, key);
	if (s) {
		w->slot = s - p->slots;
		w->gen = s->gen;
		if (fixed) {
			s->refs++;
			w->ref = true;
			/* tun's window opens only after its liveness check. */
			if (id != RB_TUN) {
				s->open[id]++;
				w->open = true;
			}
		}
	}
	spin_unlock_irqrestore(&p->lock, flags);
	if (!s)
		goto skip_free;	/* untracked: the pool was exhausted */

	if (task_work_add(current, &w->cb, TWA_RESUME)) {
		rb_window_close(w);
		goto skip_free;
	}
	return;

skip_free:
	kfree(w);
skip_module:
	module_put(THIS_MODULE);
skip_pending:
	atomic_dec(&rb_pending);
skip:
	atomic_long_inc(&sc->skipped);
}

/* ---- triggers and frees ------------------------------------------------------ */

static bool rb_is_tun(const struct net_device *dev)
{
	return dev->rtnl_link_ops && dev->rtnl_link_ops->kind &&
	       !strcmp(dev->rtnl_link_ops->kind, "tun");
}

/* Under RTNL, from the NETDEV_REGISTER notifier. */
static void rb_set_netns_local(struct net_device *dev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	dev->netns_local = true;
#else
	dev->features |= NETIF_F_NETNS_LOCAL;
#endif
}

static int rb_netdev_event(struct notifier_block *nb, unsigned long event,
			   void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct net *net;

	switch (event) {
	case NETDEV_REGISTER:
		if (rb_break_move)
			rb_set_netns_local(dev);
		rb_slot_get_or_create(&rb_afdata, dev);
		/*
		 * State that survived an UNREGISTER: the second half of a
		 * namespace move, in the mover's task under RTNL.
		 */
		if (rb_slot_get_or_create(&rb_devs, dev) && rb_scen[RB_VMOVE].armed)
			rb_queue_window(RB_VMOVE, &rb_devs, dev, GFP_KERNEL);
		break;
	case NETDEV_UNREGISTER:
		/* After synchronize_net(), on a move and on a destroy alike. */
		rb_slot_free(&rb_afdata, dev);
		/* A namespace move keeps NETREG_REGISTERED: not a free. */
		if (dev->reg_state != NETREG_UNREGISTERING)
			break;
		net = dev_net(dev);
		/* A tun/tap closed from outside its namespace. */
		if (rb_scen[RB_TUN].armed && rb_is_tun(dev) &&
		    !(current->nsproxy && current->nsproxy->net_ns == net))
			rb_queue_window(RB_TUN, &rb_nets, net, GFP_KERNEL);
		/* Called after synchronize_net() in the unregister path. */
		rb_slot_free(&rb_devs, dev);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block rb_netdev_nb = {
	.notifier_call = rb_netdev_event,
};

/*
 * ptype_all tap: dev_queue_xmit_nit() hands it transmitted packets in the
 * sender's context with BH disabled. We own one reference to @skb.
 */
static int rb_tap_rcv(struct sk_buff *skb, struct net_device *dev,
		      struct packet_type *pt, struct net_device *orig_dev)
{
	if (skb->pkt_type == PACKET_OUTGOING &&
	    (skb->protocol == htons(RB_ETH_P_IFSTRESS) ||
	     skb->protocol == htons(ETH_P_IP) ||
	     skb->protocol == htons(ETH_P_IPV6)))
		rb_queue_window(RB_OUTPATH, &rb_afdata, dev, GFP_ATOMIC);
	consume_skb(skb);
	return NET_RX_SUCCESS;
}

static struct packet_type rb_tap = {
	.type = cpu_to_be16(ETH_P_ALL),
	.func = rb_tap_rcv,
};

static bool rb_tap_added;

/* ethtool get_link_ksettings(dev, cmd) of the querier (SIOCETHTOOL). */
static int rb_media_pre(struct kprobe *kp, struct pt_regs *regs)
{
	rb_queue_window(RB_MEDIA, &rb_devs,
			(void *)regs_get_kernel_argument(regs, 0), GFP_ATOMIC);
	return 0;
}

static struct kprobe rb_kprobes[] = {
	{ .symbol_name = "veth_get_link_ksettings", .pre_handler = rb_media_pre },
	{ .symbol_name = "bond_ethtool_get_link_ksettings", .pre_handler = rb_media_pre },
};

static bool rb_kprobe_on[ARRAY_SIZE(rb_kprobes)];

static int __net_init rb_net_init(struct net *net)
{
	rb_slot_get_or_create(&rb_nets, net);
	return 0;	/* never fail a namespace */
}

static void __net_exit rb_net_pre_exit(struct net *net)
{
	rb_slot_mark_dying(&rb_nets, net);
}

static void __net_exit rb_net_exit(struct net *net)
{
	rb_slot_free(&rb_nets, net);
}

static struct pernet_operations rb_net_ops = {
	.init = rb_net_init,
	.pre_exit = rb_net_pre_exit,
	.exit = rb_net_exit,
};

/* ---- parameters ---------------------------------------------------------- */

static int rb_counters_get(char *buf, const struct kernel_param *kp)
{
	int i, n = 0;

	for (i = 0; i < RB_NR; i++) {
		struct rb_scen *s = &rb_scen[i];

		n += scnprintf(buf + n, PAGE_SIZE - n,
			       "%s armed=%d entered=%ld hit=%ld averted=%ld skipped=%ld\n",
			       s->name, s->armed,
			       atomic_long_read(&s->entered),
			       atomic_long_read(&s->hits),
			       atomic_long_read(&s->averted),
			       atomic_long_read(&s->skipped));
	}
	return n;
}

/* Read-only; also refuses counters= (or kprobes=) at load. */
static int rb_counters_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops rb_counters_ops = {
	.set = rb_counters_set,
	.get = rb_counters_get,
};
module_param_cb(counters, &rb_counters_ops, NULL, 0444);
MODULE_PARM_DESC(counters, "per scenario: armed entered hit averted skipped");

/* Which media probes registered; the guest console only shows warnings. */
static int rb_kprobes_get(char *buf, const struct kernel_param *kp)
{
	unsigned int i;
	int n = 0;

	for (i = 0; i < ARRAY_SIZE(rb_kprobes); i++)
		if (rb_kprobe_on[i])
			n += scnprintf(buf + n, PAGE_SIZE - n, "%s%s", n ? "," : "",
				       rb_kprobes[i].symbol_name);
	n += scnprintf(buf + n, PAGE_SIZE - n, "%s\n", n ? "" : "none");
	return n;
}

static const struct kernel_param_ops rb_kprobes_ops = {
	.set = rb_counters_set,
	.get = rb_kprobes_get,
};
module_param_cb(kprobes, &rb_kprobes_ops, NULL, 0444);
MODULE_PARM_DESC(kprobes, "the media kprobes that registered");

static int rb_parse_params(void)
{
	char *list, *cur, *word;
	int i, err = 0;

	if (!strcmp(hit, "panic")) {
		rb_hit_mode = RB_HIT_PANIC;
	} else if (!strcmp(hit, "warn")) {
		rb_hit_mode = RB_HIT_WARN;
	} else if (!strcmp(hit, "count")) {
		rb_hit_mode = RB_HIT_COUNT;
	} else {
		pr_err("hit=%s: expected panic, warn or count\n", hit);
		return -EINVAL;
	}

	if (!strcmp(break_ops, "move")) {
		rb_break_move = true;
	} else if (*break_ops) {
		pr_err("break=%s: expected move or nothing\n", break_ops);
		return -EINVAL;
	}

	list = kstrdup(scenarios ? scenarios : "", GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	cur = list;
	while ((word = strsep(&cur, ",")) != NULL) {
		word = strim(word);
		if (!*word)
			continue;
		for (i = 0; i < RB_NR; i++)
			if (!strcmp(word, rb_scen[i].name))
				break;
		if (i == RB_NR) {
			pr_err("scenarios: unknown scenario '%s' (known: vmove,outpath,media,tun)\n",
			       word);
			err = -EINVAL;
			break;
		}
		rb_scen[i].armed = true;
	}
	kfree(list);
	return err;
}

/* ---- load and unload ------------------------------------------------------- */

static void rb_unhook(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rb_kprobes); i++)
		if (rb_kprobe_on[i])
			unregister_kprobe(&rb_kprobes[i]);
	if (rb_tap_added)
		dev_remove_pack(&rb_tap);	/* includes synchronize_net() */
}

static int __init rb_init(void)
{
	char armed[64] = "", probes[96] = "";
	unsigned int i;
	int err;

	err = rb_parse_params();
	if (err)
		return err;
	err = rb_pool_init(&rb_devs, RB_DEV_SLOTS, 10);
	if (err)
		return err;
	err = rb_pool_init(&rb_afdata, RB_DEV_SLOTS, 10);
	if (err)
		goto out_devs;
	err = rb_pool_init(&rb_nets, RB_NET_SLOTS, 8);
	if (err)
		goto out_afdata;

	/* Nets first: the notifier's replay of existing devices needs none. */
	err = register_pernet_subsys(&rb_net_ops);
	if (err)
		goto out_nets;
	err = register_netdevice_notifier(&rb_netdev_nb);
	if (err)
		goto out_pernet;

	if (rb_scen[RB_OUTPATH].armed) {
		dev_add_pack(&rb_tap);
		rb_tap_added = true;
	}
	/* A driver that is not loaded is no reason to fail: report it. */
	if (rb_scen[RB_MEDIA].armed)
		for (i = 0; i < ARRAY_SIZE(rb_kprobes); i++)
			rb_kprobe_on[i] = !register_kprobe(&rb_kprobes[i]);

	for (i = 0; i < RB_NR; i++)
		if (rb_scen[i].armed)
			snprintf(armed + strlen(armed), sizeof(armed) - strlen(armed),
				 "%s%s", *armed ? "," : "", rb_scen[i].name);
	for (i = 0; i < ARRAY_SIZE(rb_kprobes); i++)
		if (rb_kprobe_on[i])
			snprintf(probes + strlen(probes), sizeof(probes) - strlen(probes),
				 "%s%s", *probes ? "," : "", rb_kprobes[i].symbol_name);
	pr_info("armed=%s window_us=%u tun_window_us=%lu fixed=%d hit=%s kprobes=%s break=%s\n",
		*armed ? armed : "none", window_us, rb_tun_window_us(), fixed, hit,
		*probes ? probes : "none", *break_ops ? break_ops : "none");
	return 0;

out_pernet:
	unregister_pernet_subsys(&rb_net_ops);
out_nets:
	rb_pool_destroy(&rb_nets);
out_afdata:
	rb_pool_destroy(&rb_afdata);
out_devs:
	rb_pool_destroy(&rb_devs);
	return err;
}

/* No window is pending here: each one holds a module reference. */
static void __exit rb_exit(void)
{
	rb_unhook();
	unregister_netdevice_notifier(&rb_netdev_nb);
	unregister_pernet_subsys(&rb_net_ops);
	rb_pool_destroy(&rb_nets);
	rb_pool_destroy(&rb_afdata);
	rb_pool_destroy(&rb_devs);
}

module_init(rb_init);
module_exit(rb_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("racebench: seeded interface-lifecycle races for ifstress");
