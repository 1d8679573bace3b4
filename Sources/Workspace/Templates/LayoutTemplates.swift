extension Templates {
    /// Every page's frame: the header with the views and who is signed in, the live-update banner,
    /// and the page's `main`. Pages fill the blocks `title` and `main`.
    ///
    /// Live updates (`/static/app.js`, `Docs/workspace-live.md`): an element with `data-live` and a
    /// unique `id` is replaced by the element of the same `id` in a fresh copy of the page when the
    /// store changes (`data-live="ticket"` with `data-ticket-id` only when that ticket changed); keep
    /// forms outside such regions. `<time datetime>` shows local time, `<time data-deadline>` a countdown.
    static let layout = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{$title}}Tierline{{/title}} · {{site}}</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body data-version="{{liveVersion}}"{{#agent}} data-csrf="{{csrf}}" data-time-zone="{{timeZone}}"{{/agent}}>
<a class="skip" href="#main">Skip to the content</a>
<header class="top">
  <a class="brand" href="/desk">Tierline <span class="site">{{site}}</span></a>
  {{#agent}}
  <nav aria-label="Views">
    <a href="/desk?view=mine">My tickets</a>
    <a href="/desk?view=groups">My groups</a>
    <a href="/desk?view=unassigned">Unassigned</a>
    <a href="/desk?view=at_risk">At risk</a>
    <a href="/desk?view=breached">Breached</a>
    <a href="/desk?view=handoffs">Handoffs for {{site}}</a>
    <a href="/desk?view=conflicts">Conflicts</a>
    {{#mayDashboard}}<a href="/">Dashboard</a>{{/mayDashboard}}
  </nav>
  <form class="signout" method="post" action="/logout">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <span>{{displayName}} ({{role}})</span>
    <button type="submit">Sign out</button>
  </form>
  {{/agent}}
</header>
<div id="banner" class="banner" role="status" aria-live="polite" hidden></div>
<main id="main" tabindex="-1">
{{$main}}{{/main}}
</main>
</body>
</html>
"""#

    /// The sign-in form.
    static let login = #"""
{{<layout}}
{{$title}}Sign in{{/title}}
{{$main}}
<section class="signin">
  <h1>Sign in at {{site}}</h1>
  {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{{next}}">
    <label for="name">Agent name</label>
    <input id="name" name="name" autocomplete="username" required autofocus value="{{name}}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>
  <p class="hint">Your password is set at this node by an administrator: <code>tierline agent password NAME</code>.</p>
</section>
{{/main}}
{{/layout}}
"""#

    /// A refusal shown as a page (a missing permission, an unknown ticket).
    static let error = #"""
{{<layout}}
{{$title}}{{status}}{{/title}}
{{$main}}
<section class="refusal">
  <h1>{{status}}</h1>
  <p role="alert">{{message}}</p>
  <p><a href="/desk">Back to the queue</a></p>
</section>
{{/main}}
{{/layout}}
"""#
}
