// Placeholder: the fault-injecting TCP proxy's command line is being written.
print("tierline-faultproxy: not built yet")
