extension Templates {
    /// One ticket: its fields, the handoff waiting, the forms for every action, SLA clocks, the
    /// whole history, the customer and the knowledge base.
    static let ticket = #"""
{{<layout}}
{{$title}}{{number}} {{subject}}{{/title}}
{{$main}}
<div class="ticket-layout">
<div class="primary">
<div id="ticket" data-live="ticket" data-ticket-id="{{id}}">
<h1><span class="number">{{number}}</span> {{subject}}</h1>
{{#done}}<p class="done" role="status">{{done}}</p>{{/done}}
{{#error}}<p class="error" role="alert">{{#errorField}}<strong>{{errorField}}</strong>: {{/errorField}}{{error}}</p>{{/error}}
<dl class="fields">
  <dt>Status</dt><dd class="status">{{status}}</dd>
  <dt>Priority</dt><dd>{{priority}}</dd>
  <dt>Assignee</dt><dd class="assignee">{{assignee}}</dd>
  <dt>Group</dt><dd class="group">{{group}}</dd>
  <dt>Owner</dt><dd class="owner">{{owner}}</dd>
  <dt>Channel</dt><dd>{{channel}}</dd>
  <dt>Tags</dt><dd>{{#tags}}<span class="tag">{{.}}</span> {{/tags}}</dd>
  <dt>Created</dt><dd>{{#created}}<time datetime="{{created}}">{{created}}</time>{{/created}}</dd>
  <dt>Updated</dt><dd>{{#updated}}<time datetime="{{updated}}">{{updated}}</time>{{/updated}}</dd>
  {{#conflicts}}<dt>Conflicts</dt><dd class="badge conflict">{{conflicts}} concurrent write(s) to review, marked below</dd>{{/conflicts}}
</dl>

{{#handoff}}
<section class="handoff" aria-labelledby="handoff-h">
  <h2 id="handoff-h">Handoff {{#incoming}}asked of {{toGroup}}@{{toSite}}{{/incoming}}{{^incoming}}to {{toGroup}}@{{toSite}}, waiting{{/incoming}}</h2>
  <p>Asked by {{requestedBy}} at {{fromSite}}, <time datetime="{{requestedAt}}">{{requestedAt}}</time>.</p>
  {{#note}}
  <dl class="note">
    <dt>Summary</dt><dd>{{summary}}</dd>
    <dt>Verified facts</dt><dd>{{verifiedFacts}}</dd>
    <dt>Steps tried</dt><dd>{{stepsTried}}</dd>
    <dt>Requested action</dt><dd>{{requestedAction}}</dd>
  </dl>
  {{/note}}
  {{#mayAnswer}}
  <form method="post" action="/api/tickets/{{ticketId}}/handoff/accept" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <button type="submit" id="accept-handoff">Accept the handoff</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/handoff/reject" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="reject-reason">Reason to reject</label>
    <input id="reject-reason" name="reason" required>
    <button type="submit">Reject</button>
  </form>
  {{/mayAnswer}}
  {{#mayWithdraw}}
  <form method="post" action="/api/tickets/{{ticketId}}/handoff/withdraw" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="withdraw-reason">Reason to withdraw</label>
    <input id="withdraw-reason" name="reason">
    <button type="submit">Withdraw</button>
  </form>
  {{/mayWithdraw}}
</section>
{{/handoff}}

<section class="sla" aria-labelledby="sla-h">
  <h2 id="sla-h">SLA</h2>
  {{#noClocks}}<p>No SLA policy applies.</p>{{/noClocks}}
  {{^noClocks}}
  <table>
    <thead><tr><th scope="col">Clock</th><th scope="col">State</th><th scope="col">Target</th><th scope="col">Due</th></tr></thead>
    <tbody>
    {{#clocks}}<tr class="clock-{{state}}"><td>{{clock}}</td><td>{{state}}</td><td>{{target}}</td>
      <td>{{#deadline}}{{#live}}<time class="due" data-deadline="{{deadline}}" data-warn="{{warnAt}}" datetime="{{deadline}}">{{deadline}}</time>{{/live}}{{^live}}<time datetime="{{deadline}}">{{deadline}}</time>{{/live}}{{/deadline}}</td></tr>{{/clocks}}
    </tbody>
  </table>
  {{/noClocks}}
</section>
</div>

<section class="actions" aria-label="Actions">
  <form method="post" action="/api/tickets/{{ticketId}}/replies" class="box">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="reply-body">Reply to the customer</label>
    <textarea id="reply-body" name="body" rows="4" required></textarea>
    <button type="submit">Send reply</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/notes" class="box">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="note-body">Internal note</label>
    <textarea id="note-body" name="body" rows="3" required></textarea>
    <button type="submit">Add note</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/fields" class="box grid">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="f-status">Status</label>
    <select id="f-status" name="status"><option value="">(unchanged)</option>{{#statuses}}<option value="{{.}}">{{.}}</option>{{/statuses}}</select>
    <label for="f-priority">Priority</label>
    <select id="f-priority" name="priority"><option value="">(unchanged)</option>{{#priorities}}<option value="{{.}}">{{.}}</option>{{/priorities}}</select>
    <label for="f-assignee">Assignee</label>
    <input id="f-assignee" name="assignee" placeholder="{{assignee}}">
    <label for="f-category">Category</label>
    <input id="f-category" name="category">
    <button type="submit">Update fields</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/tags" class="box grid">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="t-add">Add tags (comma-separated)</label>
    <input id="t-add" name="add">
    <label for="t-remove">Remove tags</label>
    <input id="t-remove" name="remove">
    <button type="submit">Change tags</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/transfer" class="box grid">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <label for="tr-group">Transfer to group (same tier)</label>
    <input id="tr-group" name="group" required>
    <label for="tr-reason">Reason</label>
    <input id="tr-reason" name="reason">
    <button type="submit">Transfer</button>
  </form>
  {{#mayEscalate}}
  <form method="post" action="/api/tickets/{{ticketId}}/escalate" class="box grid escalate">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <p class="legend">Escalate with a handoff note: all four parts are required.</p>
    <label for="e-to">To (group@site)</label>
    <input id="e-to" name="to" required placeholder="tier2@hq">
    <label for="e-summary">Summary</label>
    <textarea id="e-summary" name="summary" rows="2" required></textarea>
    <label for="e-facts">Verified facts</label>
    <textarea id="e-facts" name="verifiedFacts" rows="2" required></textarea>
    <label for="e-steps">Steps tried</label>
    <textarea id="e-steps" name="stepsTried" rows="2" required></textarea>
    <label for="e-action">Requested action</label>
    <textarea id="e-action" name="requestedAction" rows="2" required></textarea>
    <button type="submit">Escalate</button>
  </form>
  {{/mayEscalate}}
  <form method="post" action="/api/tickets/{{ticketId}}/ack" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <button type="submit">Acknowledge the page</button>
  </form>
  <form method="post" action="/api/tickets/{{ticketId}}/reopen" class="inline">
    <input type="hidden" name="csrf" value="{{csrf}}">
    <button type="submit">Reopen</button>
  </form>
</section>

<section class="history" aria-labelledby="history-h" data-live="ticket" data-ticket-id="{{id}}" id="history">
  <h2 id="history-h">History</h2>
  <table>
    <thead><tr><th scope="col">When</th><th scope="col">Site</th><th scope="col">What</th><th scope="col">By</th><th scope="col">Detail</th></tr></thead>
    <tbody>
    {{#events}}
    <tr class="kind-{{kind}}{{#conflict}} conflict{{/conflict}}{{#internal}} internal{{/internal}}">
      <td><time datetime="{{at}}">{{at}}</time></td>
      <td>{{site}}</td>
      <td>{{#conflict}}<strong>Conflict</strong>{{/conflict}}{{^conflict}}{{label}}{{/conflict}}{{#internal}} <span class="badge">internal</span>{{/internal}}</td>
      <td>{{actor}}</td>
      <td class="body">{{body}}</td>
    </tr>
    {{/events}}
    </tbody>
  </table>
  <h3>Escalation history</h3>
  {{#noEscalation}}<p>None.</p>{{/noEscalation}}
  <ul class="escalation">
  {{#escalation}}<li><time datetime="{{at}}">{{at}}</time> {{text}}{{#actor}} — {{actor}}{{/actor}}</li>{{/escalation}}
  </ul>
</section>
</div>

<aside class="side" aria-label="Customer and knowledge base">
  <section class="customer" aria-labelledby="customer-h">
    <h2 id="customer-h">Customer</h2>
    {{#customer}}
    <dl>
      <dt>Key</dt><dd>{{key}}</dd>
      {{#name}}<dt>Name</dt><dd>{{name}}</dd>{{/name}}
      <dt>Tier</dt><dd class="customer-tier">{{tier}}</dd>
      <dt>Value</dt><dd>{{value}}</dd>
      <dt>Tickets</dt><dd>{{ticketCount}} ({{openCount}} open)</dd>
    </dl>
    <ul>{{#recent}}<li><a href="/desk/tickets/{{displayNumber}}">{{displayNumber}}</a> {{subject}} ({{status}})</li>{{/recent}}</ul>
    {{/customer}}
    {{^customer}}<p>No customer named.</p>{{/customer}}
  </section>
  <section class="kb" aria-labelledby="kb-h">
    <h2 id="kb-h">Knowledge base</h2>
    <h3>Linked</h3>
    <ul>{{#articles}}<li>{{ref}} {{title}}</li>{{/articles}}</ul>
    <h3>Suggested for the subject</h3>
    <ul>
    {{#suggestions}}<li>{{ref}} {{title}}: {{summary}}
      <form method="post" action="/api/tickets/{{ticketId}}/articles" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="article" value="{{ref}}">
        <button type="submit">Link {{ref}}</button>
      </form></li>{{/suggestions}}
    </ul>
    <form method="post" action="/api/tickets/{{ticketId}}/articles" class="box grid">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <label for="kb-ref">Link an article (KB-…)</label>
      <input id="kb-ref" name="article" required>
      <button type="submit">Link</button>
    </form>
    {{#mayArticles}}
    <form method="post" action="/api/tickets/{{ticketId}}/articles/new" class="box grid">
      <input type="hidden" name="csrf" value="{{csrf}}">
      <p class="legend">Write an article from this ticket (published to every site)</p>
      <label for="a-title">Article title</label><input id="a-title" name="title" required>
      <label for="a-summary">Article summary</label><textarea id="a-summary" name="summary" rows="2" required></textarea>
      <label for="a-cause">Root cause</label><textarea id="a-cause" name="rootCause" rows="2" required></textarea>
      <label for="a-steps">Steps that solve it</label><textarea id="a-steps" name="steps" rows="3" required></textarea>
      <button type="submit">Publish article</button>
    </form>
    {{/mayArticles}}
  </section>
</aside>
</div>
{{/main}}
{{/layout}}
"""#
}
