package node

import (
	"log/slog"

	"github.com/luxfi/database"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/luxfi/session/storage"
	"github.com/luxfi/session/vm"
)

// metrics are the Prometheus metrics of a node, on a registry of its own
// (so several nodes can live in one process, as in tests).
type metrics struct {
	reg *prometheus.Registry

	blocks      prometheus.Counter
	txs         prometheus.Counter
	messages    prometheus.Counter
	buildErrors prometheus.Counter
	blockTxs    prometheus.Histogram
	build       prometheus.Histogram
	verify      prometheus.Histogram
	accept      prometheus.Histogram
}

// Metric names are prefixed with this namespace.
const metricsNamespace = "sessiond"

func newMetrics(api vm.API, disk *vm.DiskGuard, db database.Database, log *slog.Logger) *metrics {
	reg := prometheus.NewRegistry()
	// Block phases range from ~100µs (an empty prune) to seconds (a full
	// block of cold signatures on a loaded machine).
	durations := prometheus.ExponentialBuckets(0.0001, 2.5, 14)
	m := &metrics{
		reg: reg,
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "blocks_accepted_total",
			Help: "Blocks accepted since the node started.",
		}),
		txs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "txs_accepted_total",
			Help: "Transactions in blocks accepted since the node started.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "messages_accepted_total",
			Help: "Session messages and channel posts in blocks accepted since the node started.",
		}),
		buildErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "block_build_errors_total",
			Help: "Block rounds that failed (other than having nothing to build).",
		}),
		blockTxs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "block_txs",
			Help:    "Transactions per accepted block.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13), // 1 .. 4096
		}),
		build: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "block_build_seconds",
			Help:    "Time to build a block. Building executes the block (signature checks, state transition), so for locally built blocks this is where verification work happens.",
			Buckets: durations,
		}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "block_verify_seconds",
			Help:    "Time of Block.Verify on built blocks (cheap when the build already executed the block).",
			Buckets: durations,
		}),
		accept: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "block_accept_seconds",
			Help:    "Time to accept a block (one atomic database batch).",
			Buckets: durations,
		}),
	}
	reg.MustRegister(m.blocks, m.txs, m.messages, m.buildErrors, m.blockTxs, m.build, m.verify, m.accept,
		&statusCollector{api: api, disk: disk, db: statsOf(db), log: log},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// statusCollector reports the VM's Status at scrape time, read once per
// scrape.
type statusCollector struct {
	api  vm.API
	disk *vm.DiskGuard // nil: free space is not watched
	db   dbStats       // nil: a database without figures (BadgerDB)
	log  *slog.Logger
}

// dbStats is the database of vm.OpenDB when it is package storage's.
type dbStats interface {
	Stats() (storage.Stats, error)
}

func statsOf(db database.Database) dbStats {
	if s, ok := db.(dbStats); ok {
		return s
	}
	return nil
}

var (
	descHeight = prometheus.NewDesc(metricsNamespace+"_height",
		"Height of the last accepted block.", nil, nil)
	descLastAcceptedTime = prometheus.NewDesc(metricsNamespace+"_last_accepted_timestamp_seconds",
		"Timestamp of the last accepted block (Unix seconds).", nil, nil)
	descMempoolTxs = prometheus.NewDesc(metricsNamespace+"_mempool_txs",
		"Transactions waiting in the mempool.", nil, nil)
	descMempoolBytes = prometheus.NewDesc(metricsNamespace+"_mempool_bytes",
		"Bytes of the transactions waiting in the mempool.", nil, nil)
	descProcessing = prometheus.NewDesc(metricsNamespace+"_processing_blocks",
		"Verified blocks not yet decided.", nil, nil)
	descIdentities = prometheus.NewDesc(metricsNamespace+"_identities",
		"Registered identities.", nil, nil)
	descSessions = prometheus.NewDesc(metricsNamespace+"_sessions",
		"Sessions created.", nil, nil)
	descChannels = prometheus.NewDesc(metricsNamespace+"_channels",
		"Channels that exist.", nil, nil)
	descMessagesStored = prometheus.NewDesc(metricsNamespace+"_messages_stored",
		"Messages in the chain state (not yet pruned).", nil, nil)
	descMessagesTotal = prometheus.NewDesc(metricsNamespace+"_messages_total",
		"Messages ever accepted on the chain, pruned ones included.", nil, nil)
	descDiskFree = prometheus.NewDesc(metricsNamespace+"_disk_free_bytes",
		"Free space of the filesystem holding the database.", nil, nil)
	descDiskReserve = prometheus.NewDesc(metricsNamespace+"_disk_reserve_bytes",
		"Free space the node keeps for block commits and database maintenance.", nil, nil)
	descDiskAdmitting = prometheus.NewDesc(metricsNamespace+"_disk_admitting",
		"1 while free space admits a transaction of the largest size, 0 while transactions are refused for lack of space.", nil, nil)
	descDBL0Files = prometheus.NewDesc(metricsNamespace+"_db_l0_files",
		"Level-0 tables of the database's LSM (compacted from 4; writes stop at 32).", nil, nil)
	descDBCompactions = prometheus.NewDesc(metricsNamespace+"_db_compactions_total",
		"LSM compactions since the node started.", nil, nil)
	descDBFlushes = prometheus.NewDesc(metricsNamespace+"_db_flushes_total",
		"Memtable flushes since the node started.", nil, nil)
	descDBCompactionDebt = prometheus.NewDesc(metricsNamespace+"_db_compaction_debt_bytes",
		"Estimated bytes compactions still have to write.", nil, nil)
	descDBLSMBytes = prometheus.NewDesc(metricsNamespace+"_db_lsm_bytes",
		"Size of the LSM's files (tables, logs, manifest).", nil, nil)
	descDBValueLogBytes = prometheus.NewDesc(metricsNamespace+"_db_value_log_bytes",
		"Size of the value log holding the bytes of accepted blocks.", nil, nil)
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHeight, descLastAcceptedTime, descMempoolTxs, descMempoolBytes,
		descProcessing, descIdentities, descSessions, descChannels, descMessagesStored, descMessagesTotal,
		descDiskFree, descDiskReserve, descDiskAdmitting,
		descDBL0Files, descDBCompactions, descDBFlushes, descDBCompactionDebt, descDBLSMBytes, descDBValueLogBytes} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.api.Status()
	if err != nil {
		c.log.Debug("metrics: status unavailable", "error", err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(descHeight, float64(s.Height))
	gauge(descLastAcceptedTime, float64(s.LastAcceptedTime)/1000)
	gauge(descMempoolTxs, float64(s.MempoolTxs))
	gauge(descMempoolBytes, float64(s.MempoolBytes))
	gauge(descProcessing, float64(s.ProcessingBlocks))
	gauge(descIdentities, float64(s.Counts.Identities))
	gauge(descSessions, float64(s.Counts.Sessions))
	gauge(descChannels, float64(s.Counts.Channels))
	gauge(descMessagesStored, float64(s.Counts.MessagesStored))
	ch <- prometheus.MustNewConstMetric(descMessagesTotal, prometheus.CounterValue, float64(s.Counts.MessagesTotal))
	if c.disk != nil {
		d, _ := c.disk.Report(s.MempoolBytes)
		gauge(descDiskFree, float64(d.FreeBytes))
		gauge(descDiskReserve, float64(d.ReserveBytes))
		admitting := 0.0
		if d.Admitting {
			admitting = 1
		}
		gauge(descDiskAdmitting, admitting)
	}
	if c.db != nil {
		st, err := c.db.Stats()
		if err != nil {
			c.log.Debug("metrics: database figures unavailable", "error", err)
			return
		}
		gauge(descDBL0Files, float64(st.L0Files))
		ch <- prometheus.MustNewConstMetric(descDBCompactions, prometheus.CounterValue, float64(st.Compactions))
		ch <- prometheus.MustNewConstMetric(descDBFlushes, prometheus.CounterValue, float64(st.Flushes))
		gauge(descDBCompactionDebt, float64(st.CompactionDebtBytes))
		gauge(descDBLSMBytes, float64(st.LSMBytes))
		gauge(descDBValueLogBytes, float64(st.ValueLogBytes))
	}
}
