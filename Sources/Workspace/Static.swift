import Dashboard
import HTTPTypes
import Hummingbird
import NIOCore

/// The workspace's style sheet and script, compiled into the binary and served from `/static/`:
/// nothing is fetched from elsewhere and there is no build step.
enum StaticFiles {
    static func register(on router: Router<AgentContext>) {
        router.get("/static/app.css") { _, _ in file(Assets.css, type: "text/css; charset=utf-8") }
        router.get("/static/app.js") { _, _ in file(Assets.js, type: "text/javascript; charset=utf-8") }
        router.get("/static/dashboard.css") { _, _ in file(DashboardPage.style, type: "text/css; charset=utf-8") }
    }

    static func file(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
