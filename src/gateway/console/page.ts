/**
 * The console's page and style sheet, as the gateway serves them. Kept as text in a module so
 * that tsc puts them in dist/ with the scripts (the images copy dist/src and nothing else). The
 * page holds no data and no secret: everything is fetched by the scripts with the token the
 * operator types; no inline script or style, so the Content-Security-Policy can forbid both.
 */

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>glm-legal-serve · console</title>
<link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/assets/console.css">
<script type="module" src="/console/assets/main.js"></script>
</head>
<body data-state="loading">
<header>
  <h1>glm-legal-serve console</h1>
  <form id="token-form" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" spellcheck="false" autocomplete="off">
    <button type="submit">Use token</button>
    <button type="button" id="forget">Forget token</button>
  </form>
  <p id="connection" class="message" role="status">Loading…</p>
  <p id="updated" class="updated"></p>
</header>
<main>
  <section id="workers-section" aria-labelledby="workers-title">
    <h2 id="workers-title">Workers</h2>
    <p id="workers-summary"></p>
    <div class="scroll">
    <table>
      <thead><tr><th scope="col">Worker</th><th scope="col">Health</th><th scope="col">Breaker</th><th scope="col">In flight</th><th scope="col">Queue</th><th scope="col">Running</th><th scope="col">KV cache (tokens)</th><th scope="col">Adapters</th><th scope="col">Provider</th><th scope="col">Model</th></tr></thead>
      <tbody id="workers"></tbody>
    </table>
    </div>
  </section>

  <section id="degrade-section" aria-labelledby="degrade-title">
    <h2 id="degrade-title">Degrade switch</h2>
    <dl id="degrade-state" class="pairs"></dl>
    <form id="degrade-form">
      <span class="field">
        <label for="mode">Degrade mode</label>
        <select id="mode" name="mode">
          <option value="auto">auto</option>
          <option value="forced">forced</option>
          <option value="off">off</option>
        </select>
      </span>
      <span class="field">
        <label for="source">Degrade source</label>
        <select id="source" name="source">
          <option value="kb">kb</option>
          <option value="canned">canned</option>
        </select>
      </span>
      <button type="submit">Apply</button>
    </form>
    <p id="degrade-message" class="message" role="status"></p>
  </section>

  <section id="limiter-section" aria-labelledby="limiter-title">
    <h2 id="limiter-title">Rate limits</h2>
    <dl id="limiter-state" class="pairs"></dl>
    <table>
      <thead><tr><th scope="col">Tier</th><th scope="col">Requests</th><th scope="col">Tokens</th><th scope="col">429s, last minute</th></tr></thead>
      <tbody id="tiers"></tbody>
    </table>
    <h3>429s in the last minute, by tier</h3>
    <ul id="limited" class="counts"></ul>
  </section>

  <section id="minute-section" aria-labelledby="minute-title">
    <h2 id="minute-title">Last minute (this replica)</h2>
    <div class="columns">
      <div><h3>Answers by worker</h3><ul id="by-worker" class="counts"></ul></div>
      <div><h3>Fallback by reason</h3><ul id="by-reason" class="counts"></ul></div>
      <div><h3>Errors by code</h3><ul id="by-code" class="counts"></ul></div>
    </div>
  </section>

  <section id="kb-section" aria-labelledby="kb-title">
    <h2 id="kb-title">Knowledge base</h2>
    <p><span id="kb-count">–</span> entries</p>
    <form id="kb-search" role="search">
      <label for="kb-query">Search the knowledge base</label>
      <input id="kb-query" name="q" type="search" maxlength="512">
      <button type="submit">Search</button>
    </form>
    <p id="kb-message" class="message" role="status"></p>
    <ol id="kb-results" class="entries"></ol>
    <form id="kb-add">
      <h3>Add an entry</h3>
      <label for="kb-new-question">Question</label>
      <input id="kb-new-question" name="question" maxlength="2000">
      <label for="kb-new-answer">Answer</label>
      <textarea id="kb-new-answer" name="answer" rows="3" maxlength="20000"></textarea>
      <button type="submit">Add</button>
    </form>
  </section>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `:root { color-scheme: light dark; --good: #1a7f37; --bad: #c62828; --line: #8884; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0; padding: 0 1rem 2rem; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; border-bottom: 1px solid var(--line); padding: .5rem 0; }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
h3 { font-size: .95rem; margin: .6rem 0 .3rem; }
form { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; }
#kb-add { flex-direction: column; align-items: stretch; max-width: 40rem; margin-top: 1rem; }
#kb-add button { align-self: flex-start; }
.field { display: inline-flex; align-items: center; gap: .3rem; }
input, select, textarea, button { font: inherit; padding: .2rem .4rem; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: 0 2rem; }
#workers-section, #kb-section { grid-column: 1 / -1; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td small { display: block; opacity: .75; }
.good { color: var(--good); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
meter { width: 6rem; vertical-align: middle; }
.pairs { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0 0 .5rem; }
.pairs dt { font-weight: 600; }
.pairs dd { margin: 0; }
.counts { list-style: none; padding: 0; margin: 0; }
.counts li { display: flex; justify-content: space-between; max-width: 24rem; border-bottom: 1px dotted var(--line); }
.counts .key { overflow-wrap: anywhere; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 1rem; }
.empty { opacity: .6; }
.message { margin: .3rem 0; min-height: 1.4em; }
.message.error { color: var(--bad); font-weight: 600; }
.message.ok { color: var(--good); }
.updated { opacity: .7; margin: 0; }
.entries { padding-left: 1.2rem; }
.entry { margin-bottom: .8rem; }
.entry h3, .entry p { margin: 0 0 .2rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.entry small { display: block; opacity: .7; }
body[data-state="error"] main { opacity: .55; }
`;

/** A favicon of our own, so the browser asks for nothing the gateway does not serve. */
export const CONSOLE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1a5fb4"/><path d="M4 11h8M4 8h8M4 5h5" stroke="#fff" stroke-width="1.6"/></svg>
`;
