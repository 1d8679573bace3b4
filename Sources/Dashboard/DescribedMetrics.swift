import CoreMetrics
import Prometheus

/// A swift-metrics factory over a Prometheus registry that gives each family its `# HELP` text.
///
/// swift-prometheus's own ``PrometheusMetricsFactory`` registers every family with an empty help,
/// and Prometheus tools (`promtool check metrics`) reject a family without one. This factory looks
/// the text up by label in `help` and makes the counters and meters in the registry with it; what
/// it has no text for goes to swift-prometheus's factory unchanged.
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// let metrics = SyncMetrics(factory: DescribedMetricsFactory(registry: registry, help: SyncMetrics.help))
/// ```
public struct DescribedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let help: [String: String]
    let plain: PrometheusMetricsFactory

    /// - Parameters:
    ///   - registry: where the families are registered (the one `/metrics` emits).
    ///   - help: the help text of each family, by its label.
    public init(registry: PrometheusCollectorRegistry, help: [String: String]) {
        self.registry = registry
        self.help = help
        plain = PrometheusMetricsFactory(registry: registry)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let text = help[label] else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(name: label, labels: dimensions, help: text)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let text = help[label] else { return plain.makeFloatingPointCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(name: label, labels: dimensions, help: text)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate, let text = help[label] else { return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate) }
        return registry.makeGauge(name: label, labels: dimensions, help: text)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let text = help[label] else { return plain.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(name: label, labels: dimensions, help: text)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        plain.makeTimer(label: label, dimensions: dimensions)
    }

    public func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
