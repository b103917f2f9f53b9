// A classic script (not a module), run before demo.js: opened from disk (file://), a browser refuses to
// load the page's ES modules and models, and the page would say "loading…" forever. Say at once, as text,
// how to serve the built book instead. The folder to serve is the one the page was opened from when its
// path ends in book/demo.html, as in a built book. demo.js does nothing on file:.
(() => {
  const status = document.getElementById('fer-demo-status');
  if (location.protocol !== 'file:' || !status) return;
  const found = decodeURIComponent(location.pathname).match(/^(.*)\/book\/demo\.html$/);
  const root = found ? found[1].replace(/^\/([A-Za-z]:)/, '$1') : '_build/html';  // "/C:/…" on Windows
  status.textContent = 'This page was opened from disk (file://), where the browser refuses to load its code and '
    + 'models, so it cannot run. Serve the built book over HTTP instead: run '
    + `python -m http.server --directory "${root}" 8000 and open http://localhost:8000/book/demo.html`;
})();
