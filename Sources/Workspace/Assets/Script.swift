extension Assets {
    /// The workspace's one script: small and hand-written.
    static let js = #"""
"use strict";
"""#
}
