// Placeholder: the fault-injecting TCP proxy is being written.
public enum FaultProxyPlaceholder {}
