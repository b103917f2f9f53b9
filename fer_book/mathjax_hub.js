/* fer_book: the ipywidgets embed bundle (@jupyter-widgets/html-manager 1.x) typesets every widget label
   with MathJax 2's `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])` whenever `window.MathJax`
   exists. The book loads MathJax 3, which has no Hub: on a page with equations and widgets each label
   threw a TypeError. Every object the page assigns to `window.MathJax` (Sphinx's configuration, then
   MathJax 3 itself) gets a non-enumerable Hub whose Queue typesets the element with MathJax 3. */
(function () {
  "use strict";

  function typeset(job) {
    var element = Array.isArray(job) ? job[2] : null;
    var mathjax = window.MathJax;
    if (!element || !mathjax || !mathjax.startup || !mathjax.startup.promise) {
      return; // MathJax 3 not loaded yet: it typesets the whole page when it starts
    }
    mathjax.startup.promise
      .then(function () {
        return mathjax.typesetPromise([element]);
      })
      .catch(function (error) {
        console.warn("MathJax could not typeset a widget label", error);
      });
  }

  function withHub(value) {
    if (value && typeof value === "object" && !value.Hub) {
      Object.defineProperty(value, "Hub", { value: { Queue: typeset }, configurable: true, writable: true });
    }
    return value;
  }

  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () {
      return current;
    },
    set: function (value) {
      current = withHub(value);
    },
  });
})();
