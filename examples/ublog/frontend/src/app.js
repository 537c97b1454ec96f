// μblog single-page app: talks to the backend with same-origin relative paths (the router
// sends /api/* to gunicorn and everything else here). No framework, no build dependencies.
"use strict";

const API = "/api";
const TOKEN_KEY = "ublog.token";
const EMAIL_KEY = "ublog.email";

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem(TOKEN_KEY), nextPage: null };

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Token ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "omit", // token auth only: no session cookie, so no CSRF dance
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && state.token) setToken(null, null);
    throw new Error(describe(data) || `${response.status} ${response.statusText}`);
  }
  return data;
}

function describe(data) {
  if (!data || typeof data !== "object") return "";
  if (data.detail) return data.detail;
  return Object.entries(data)
    .map(([key, value]) => (key === "non_field_errors" ? "" : `${key}: `) + [].concat(value).join(" "))
    .join("; ");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function setToken(token, email) {
  state.token = token;
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(EMAIL_KEY, email);
  } else {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(EMAIL_KEY);
  }
  renderSession();
}

function renderSession() {
  const loggedIn = Boolean(state.token);
  $("login").hidden = loggedIn;
  $("compose").hidden = !loggedIn;
  const who = $("who");
  who.replaceChildren();
  if (loggedIn) {
    who.append(
      localStorage.getItem(EMAIL_KEY) || "",
      " ",
      el("button", { class: "link", onclick: () => setToken(null, null) }, "Log out"),
    );
  }
}

function when(iso) {
  return new Date(iso).toLocaleString();
}

function postCard(post, { detail = false } = {}) {
  const likeButton = el(
    "button",
    {
      class: post.liked ? "like liked" : "like",
      title: state.token ? "Like" : "Log in to like",
      onclick: async (event) => {
        if (!state.token) return;
        const result = await api(`/drf/fbv/posts/${post.id}/like/`, { method: "POST" });
        event.target.classList.toggle("liked", result.liked);
        event.target.textContent = `♥ ${result.likes}`;
      },
    },
    `♥ ${post.like_count}`,
  );
  const meta = [
    post.author.email,
    when(post.created_on),
    post.processed_at ? `${post.word_count} words` : "processing…",
  ];
  if (post.total_views !== undefined) meta.push(`${post.total_views} views`);
  return el(
    "article",
    { class: "card post" },
    el("p", { class: "body" }, post.body),
    el(
      "div",
      { class: "row" },
      el("span", { class: "muted" }, meta.join(" · ")),
      el(
        "span",
        {},
        detail ? null : el("a", { href: `/posts/${post.id}`, "data-link": "" }, "open"),
        " ",
        likeButton,
      ),
    ),
  );
}

async function showList(append = false) {
  const page = append ? state.nextPage : 1;
  const data = await api(`/drf/fbv/posts/?page=${page}`);
  const list = $("posts");
  if (!append) list.replaceChildren();
  for (const post of data.results) list.append(postCard(post));
  state.nextPage = data.next ? page + 1 : null;
  $("more").hidden = !state.nextPage;
}

async function showPost(id) {
  const post = await api(`/drf/fbv/posts/${id}/`);
  $("posts").replaceChildren(postCard(post, { detail: true }), el("a", { href: "/", "data-link": "" }, "← all posts"));
  $("more").hidden = true;
}

async function route() {
  const match = location.pathname.match(/^\/posts\/(\d+)\/?$/);
  try {
    if (match) await showPost(match[1]);
    else await showList();
  } catch (error) {
    $("posts").replaceChildren(el("p", { class: "error" }, `Could not load posts: ${error.message}`));
  }
}

function navigate(href) {
  history.pushState(null, "", href);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (link && !event.metaKey && !event.ctrlKey) {
    event.preventDefault();
    navigate(link.getAttribute("href"));
  }
});
window.addEventListener("popstate", route);

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  $("login-error").textContent = "";
  try {
    const data = await api("/auth/token/", {
      method: "POST",
      body: { email: form.email.value, password: form.password.value },
    });
    setToken(data.token, data.user.email);
    form.password.value = "";
    route();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("post-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  $("post-error").textContent = "";
  try {
    await api("/drf/fbv/posts/", { method: "POST", body: { body: form.body.value } });
    form.reset();
    $("chars").textContent = "0 / 200";
    if (location.pathname !== "/") history.pushState(null, "", "/");
    await showList();
    // The worker fills in word and like counts a moment later.
    setTimeout(() => location.pathname === "/" && showList(), 1500);
  } catch (error) {
    $("post-error").textContent = error.message;
  }
});

$("post-form").body.addEventListener("input", (event) => {
  $("chars").textContent = `${event.target.value.length} / 200`;
});
$("more").addEventListener("click", () => showList(true));

api("/version/")
  .then((data) => ($("backend-version").textContent = data.version))
  .catch(() => ($("backend-version").textContent = "unreachable"));

renderSession();
route();
