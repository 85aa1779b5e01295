-- PAS for Neovim: a thin client of pas-lsp (see docs/lsp.md). Works on 0.7.2 (start_client +
-- buf_attach_client) and uses vim.lsp.start where it exists (0.8+).
local M = {}

M.config = {
  cmd = { "pas-lsp" }, -- e.g. { "python3", "-m", "pas_lsp" }
  models = {}, -- pas.models; empty: the daemon's models.choices
  defaultModel = "", -- pas.defaultModel; empty: the daemon's models.default
  socket = "", -- pas.socket; empty: the daemon's default
  engine = "", -- what runs the tasks ("native", "aider", ...); empty: the model's configured engine
  root_markers = { ".git", ".pas.toml" },
  filetypes = nil, -- nil: every file buffer
  cmd_env = nil, -- extra environment for the server
}
M.status = nil -- last pas/status notification
M.clients = {} -- root_dir -> client id (0.7 path)

local uv = vim.loop

local function settings()
  local s = {}
  if #M.config.models > 0 then
    s.models = M.config.models
  end
  if M.config.defaultModel ~= "" then
    s.defaultModel = M.config.defaultModel
  end
  if M.config.socket ~= "" then
    s.socket = M.config.socket
  end
  return s
end

local function find_root(path)
  local dir = vim.fn.fnamemodify(path, ":p:h")
  while dir and dir ~= "" do
    for _, marker in ipairs(M.config.root_markers) do
      if uv.fs_stat(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      break
    end
    dir = parent
  end
  return vim.fn.getcwd()
end

local function notify(msg, level)
  vim.notify("PAS: " .. msg, level or vim.log.levels.INFO)
end

-- LSP MessageType (1 Error, 2 Warning, 3 Info, 4 Log) to vim.log.levels
local MESSAGE_LEVELS = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }

local handlers = {
  ["pas/status"] = function(_, result)
    M.status = result
    pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "PasStatus", modeline = false })
  end,
  -- The server's messages (a task of ours FAILED or is in review flagged, an untrusted .pas.toml, ...)
  -- go through vim.notify, so a notification plugin shows them; 0.7 would only echo them.
  ["window/showMessage"] = function(_, result)
    if result and result.message then
      vim.notify(result.message, MESSAGE_LEVELS[result.type] or vim.log.levels.INFO)
    end
    return vim.NIL
  end,
}

--- Ask for the instruction of a code action that has none, then run the server's pas.delegate.
local function prompt_delegate(command, ctx)
  local args = vim.deepcopy((command.arguments or {})[1] or {})
  args.engine = args.engine or M.engine()
  M.ask_instruction(nil, function(instruction)
    args.instruction = instruction
    M.execute("pas.delegate", args, function(result)
      notify("task " .. result.task_id .. " queued")
    end, ctx and ctx.bufnr)
  end)
end

--- The client half of the folder code action: ask for the instruction, then run pas.delegateJob.
local function prompt_delegate_job(command, ctx)
  local args = vim.deepcopy((command.arguments or {})[1] or {})
  args.engine = args.engine or M.engine()
  M.ask_instruction(nil, function(instruction)
    args.instruction = instruction
    M.execute("pas.delegateJob", args, function(result)
      notify("job " .. result.job_id .. " queued: " .. #(result.task_ids or {}) .. " task(s)")
    end, ctx and ctx.bufnr)
  end)
end

--- The client half of the "Revise…" lens and action on a hunk: ask for the comment, then run pas.revise.
local function prompt_revise(command, ctx)
  local args = vim.deepcopy((command.arguments or {})[1] or {})
  local about = args.hunks and #args.hunks > 0 and (" (hunk " .. table.concat(args.hunks, ", ") .. ")") or ""
  vim.ui.input({ prompt = "PAS revise " .. tostring(args.task) .. about .. ": " }, function(input)
    if not input or vim.trim(input) == "" then
      return
    end
    args.comment = vim.trim(input)
    M.execute("pas.revise", args, function(result)
      notify("revision " .. result.revision .. " of task " .. result.task_id .. " queued")
    end, ctx and ctx.bufnr)
  end)
end

function M.client_config(root)
  return {
    name = "pas",
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ":t") } },
    init_options = settings(),
    settings = { pas = settings() },
    handlers = handlers,
  }
end

--- Start (or reuse) pas-lsp for a buffer.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" or vim.bo[bufnr].buftype ~= "" then
    return
  end
  local root = find_root(name)
  if vim.lsp.start then
    return vim.lsp.start(M.client_config(root), { bufnr = bufnr })
  end
  local id = M.clients[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(M.client_config(root))
    M.clients[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  vim.lsp.commands["pas.promptDelegate"] = prompt_delegate
  vim.lsp.commands["pas.promptDelegateJob"] = prompt_delegate_job
  vim.lsp.commands["pas.promptRevise"] = prompt_revise
  local group = vim.api.nvim_create_augroup("pas", { clear = true })
  -- Without a filetype list, attach on reading any file: filetype detection may be off (nvim -u).
  local events = M.config.filetypes and { "FileType" } or { "BufReadPost", "BufNewFile" }
  vim.api.nvim_create_autocmd(events, {
    group = group,
    pattern = M.config.filetypes or "*",
    callback = function(ev)
      M.attach(ev.buf)
    end,
  })
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.api.nvim_buf_get_name(buf) ~= "" then
      M.attach(buf)
    end
  end
end

--- The pas client attached to a buffer (or any pas client).
function M.client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local clients
  if vim.lsp.get_clients then
    clients = vim.lsp.get_clients({ name = "pas", bufnr = bufnr })
  else
    clients = vim.tbl_values(vim.lsp.buf_get_clients(bufnr))
  end
  for _, c in ipairs(clients) do
    if c.name == "pas" then
      return c
    end
  end
  for _, c in ipairs(vim.lsp.get_active_clients()) do
    if c.name == "pas" then
      return c
    end
  end
end

--- Run one of the server's commands; `on_result` gets the result, errors become notifications.
function M.execute(command, arg, on_result, bufnr)
  local client = M.client(bufnr)
  if not client then
    notify("pas-lsp is not running for this buffer", vim.log.levels.ERROR)
    return
  end
  client.request("workspace/executeCommand", { command = command, arguments = { arg } }, function(err, result)
    if err then
      notify(err.message or tostring(err), vim.log.levels.ERROR)
    elseif on_result then
      on_result(result)
    end
  end, bufnr or vim.api.nvim_get_current_buf())
end

local PAS_COMMENT = "[#/%-][/%-]?%s*pas:%s*(.-)%s*$"

function M.comment_instruction(lines)
  for _, line in ipairs(lines) do
    local found = line:match(PAS_COMMENT)
    if found and found ~= "" then
      return found
    end
  end
end

function M.ask_instruction(default, done)
  vim.ui.input({ prompt = "PAS instruction: ", default = default or "" }, function(input)
    if input and vim.trim(input) ~= "" then
      done(vim.trim(input))
    end
  end)
end

--- The engine option as pas.delegate takes it (nil: the model's configured engine).
function M.engine()
  return M.config.engine ~= "" and M.config.engine or nil
end

--- Pick a model with vim.ui.select, then an engine when more than native is installed;
--- `done(model, engine)` (engine nil: the model's configured one). Offers what pas.models answers.
function M.pick(done, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  M.execute("pas.models", { uri = vim.uri_from_bufnr(bufnr) }, function(offer)
    local models = vim.deepcopy(offer.models or {})
    if offer.default and offer.default ~= vim.NIL and not vim.tbl_contains(models, offer.default) then
      table.insert(models, 1, offer.default)
    end
    vim.ui.select(models, { prompt = "PAS: model" }, function(model)
      if not model then
        return
      end
      local engines = offer.engines or { "native" }
      if #engines <= 1 then
        return done(model, M.engine())
      end
      local first = M.engine()
      if first and vim.tbl_contains(engines, first) then -- the configured engine comes first
        engines = vim.tbl_filter(function(e)
          return e ~= first
        end, engines)
        table.insert(engines, 1, first)
      end
      vim.ui.select(engines, { prompt = "PAS: engine for " .. model }, function(engine)
        if engine then
          done(model, engine)
        end
      end)
    end)
  end, bufnr)
end

--- :PasDelegate [model]: the range's lines (or the file) with an instruction from vim.ui.input.
--- :PasDelegate! picks the model (and the engine, when more than native is installed) first.
function M.delegate(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  if opts.pick then
    return M.pick(function(model, engine)
      M.delegate(vim.tbl_extend("force", opts, { pick = false, model = model, engine = engine or false }))
    end, bufnr)
  end
  local engine = opts.engine
  if engine == nil then
    engine = M.engine()
  end
  local args = { uri = vim.uri_from_bufnr(bufnr), model = opts.model, engine = engine or nil }
  local lines
  if opts.range then
    local l1, l2 = opts.range[1], opts.range[2]
    args.range = { start = { line = l1 - 1, character = 0 }, ["end"] = { line = l2, character = 0 } }
    lines = vim.api.nvim_buf_get_lines(bufnr, l1 - 1, l2, false)
  else
    lines = { vim.api.nvim_get_current_line() }
  end
  M.ask_instruction(M.comment_instruction(lines), function(instruction)
    args.instruction = instruction
    M.execute("pas.delegate", args, function(result)
      notify("task " .. result.task_id .. " queued")
    end, bufnr)
  end)
end

--- :PasJob [paths...]: files and folders (default: the current file's folder) as one job.
function M.delegate_job(paths, opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  if not paths or #paths == 0 then
    paths = { vim.fn.expand("%:p:h") }
  end
  local uris = {}
  for _, path in ipairs(paths) do
    table.insert(uris, vim.uri_from_fname((vim.fn.fnamemodify(path, ":p"):gsub("/$", ""))))
  end
  prompt_delegate_job({ arguments = { { uris = uris, model = opts.model, engine = opts.engine } } }, { bufnr = bufnr })
end

--- The task to act on: given, the only one in review, or picked with vim.ui.select.
local function with_task(task, verb, fn)
  if task then
    return fn(task)
  end
  local uri = vim.uri_from_bufnr(0)
  M.execute("pas.tasks", { states = { "REVIEW", "CONFLICT" } }, function(result)
    local tasks = result.tasks or {}
    table.sort(tasks, function(a, b)
      return vim.tbl_contains(a.uris, uri) and not vim.tbl_contains(b.uris, uri)
    end)
    if #tasks == 0 then
      notify("no task is in review")
    elseif #tasks == 1 or vim.tbl_contains(tasks[1].uris, uri) and not vim.tbl_contains(tasks[2].uris, uri) then
      fn(tasks[1].id)
    else
      vim.ui.select(tasks, {
        prompt = "PAS: task to " .. verb,
        format_item = function(t)
          return t.id .. ": " .. t.instruction .. " (" .. table.concat(t.files, ", ") .. ")"
        end,
      }, function(t)
        if t then
          fn(t.id)
        end
      end)
    end
  end)
end

--- :PasApprove / :PasReject
function M.review(verb, task)
  with_task(task, verb, function(id)
    M.execute("pas." .. verb, { task = id }, function(r)
      if verb == "approve" then
        local msg = "task " .. r.task_id .. " approved, applied " .. #r.applied .. " hunk(s)"
        if #r.conflicts > 0 then
          notify(msg .. ", " .. #r.conflicts .. " in conflict", vim.log.levels.WARN)
        else
          notify(msg)
        end
      else
        notify("task " .. r.task_id .. " rejected")
      end
      M.last_review = r
    end)
  end)
end

--- :PasRevise [task]: send a task in review back to its Programmer with a comment from vim.ui.input.
function M.revise(task)
  with_task(task, "revise", function(id)
    prompt_revise({ arguments = { { task = id } } }, { bufnr = vim.api.nvim_get_current_buf() })
  end)
end

--- :PasDiff: the server opens the task's .diff with window/showDocument.
function M.diff(task)
  with_task(task, "show", function(id)
    M.execute("pas.showDiff", { task = id })
  end)
end

--- :PasStatus
function M.show_status()
  M.execute("pas.status", {}, function(s)
    local lines = {
      string.format("PAS (daemon %s): %d idle · %d busy · %d failed; %d queued · %d running · %d in review",
        s.daemon, s.idle, s.busy, s.failed, s.queued, s.running, s.review),
    }
    for _, p in ipairs(s.programmers or {}) do
      table.insert(lines, string.format("  %s %s %s", p.id, p.state, p.task_id ~= vim.NIL and p.task_id or ""))
    end
    notify(table.concat(lines, "\n"))
  end)
end

--- A statusline component: "PAS 3 idle · 1 busy".
function M.statusline()
  local s = M.status
  if not s then
    return ""
  end
  if s.daemon == "down" then
    return "PAS: down"
  end
  return string.format("PAS %d idle · %d busy · %d failed", s.idle, s.busy, s.failed)
end

return M
