//! A hub's own `/metrics` figures: its work against the engine, read at scrape time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::hub::Hub;

/// The hub's figures.
#[derive(Debug)]
pub(super) struct EngineFigures(pub(super) Arc<Hub>);

impl Collector for EngineFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0.stats;
        let counter = |encoder: &mut DescriptorEncoder, name, help, n: u64| {
            let c = ConstCounter::new(n);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
        };
        counter(
            &mut encoder,
            "cometail_hub_engine_reads",
            "Requests this hub sent to the engine (direct gets, stream info): they grow with \
             the files and views read live, not with the viewers.",
            stats.engine_reads.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "cometail_hub_cold_reads",
            "Live reads a view's cache could not answer (older or foreign cursors), sent to \
             the engine.",
            stats.cold_reads.load(Ordering::Relaxed),
        )?;
        let gauge = |encoder: &mut DescriptorEncoder, name, help, n: usize| {
            let g = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
        };
        gauge(
            &mut encoder,
            "cometail_hub_views",
            "Files and views read live now: one engine reader each.",
            self.0.views_read(),
        )?;
        gauge(
            &mut encoder,
            "cometail_hub_engine_up",
            "1 while the hub's connection to the engine is up.",
            usize::from(self.0.engine_up()),
        )
    }
}
