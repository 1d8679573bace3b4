extension Templates {
    /// A queue: the views, the filters, one row per ticket, the next page.
    static let queue = #"""
{{<layout}}
{{$title}}{{heading}}{{/title}}
{{$main}}
<h1>{{heading}}</h1>
<nav class="views" aria-label="Queues">
  {{#views}}<a href="/desk?view={{name}}"{{#current}} aria-current="page"{{/current}}>{{title}}</a>{{/views}}
</nav>
<form class="filters" method="get" action="/desk" role="search">
  <input type="hidden" name="view" value="{{view}}">
  <label for="f-q">Search</label>
  <input id="f-q" name="q" value="{{q}}" placeholder="subject or number">
  <label for="f-status">Status</label>
  <select id="f-status" name="status">
    <option value="">{{defaultStatus}}</option>
    <option value="unresolved"{{#unresolved}} selected{{/unresolved}}>unresolved</option>
    {{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/statuses}}
  </select>
  <label for="f-group">Group</label>
  <input id="f-group" name="group" value="{{group}}" size="12">
  <label for="f-assignee">Assignee</label>
  <input id="f-assignee" name="assignee" value="{{assignee}}" size="10">
  <label for="f-site">Owner site</label>
  <input id="f-site" name="site" value="{{siteFilter}}" size="8" placeholder="{{ownSite}}">
  <button type="submit">Filter</button>
</form>
<section id="queue" data-live="queue" aria-label="Tickets">
{{#empty}}<p class="empty">No tickets here.</p>{{/empty}}
{{^empty}}
<table class="queue">
  <thead><tr><th scope="col">Ticket</th><th scope="col">Subject</th><th scope="col">Status</th><th scope="col">Priority</th>
  <th scope="col">Assignee</th><th scope="col">Group</th><th scope="col">Owner</th><th scope="col">SLA</th><th scope="col">Updated</th></tr></thead>
  <tbody>
  {{#rows}}
  <tr data-ticket="{{id}}" class="sla-{{slaState}}">
    <td><a href="/desk/tickets/{{number}}">{{number}}</a></td>
    <td>{{subject}}{{#conflicts}} <span class="badge conflict" title="concurrent writes to review">{{conflicts}} conflict(s)</span>{{/conflicts}}{{#tags}} <span class="tag">{{.}}</span>{{/tags}}</td>
    <td>{{status}}</td>
    <td>{{priority}}</td>
    <td>{{assignee}}</td>
    <td>{{group}}</td>
    <td>{{owner}}</td>
    <td>{{#deadline}}<time class="due" data-deadline="{{deadline}}" datetime="{{deadline}}">{{deadline}}</time>{{/deadline}}</td>
    <td>{{#updated}}<time datetime="{{updated}}">{{updated}}</time>{{/updated}}</td>
  </tr>
  {{/rows}}
  </tbody>
</table>
{{/empty}}
{{#next}}<p><a class="next" href="/desk?{{next}}">Next page</a></p>{{/next}}
</section>
{{/main}}
{{/layout}}
"""#
}
