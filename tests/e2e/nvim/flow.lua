-- What every headless Neovim flow shares: the plugin on the runtimepath, a log the Python test
-- reads, waits with a reason, and the exit code (0 on success, :cq (1) on failure).
local M = {}
local env = vim.env
vim.opt.runtimepath:prepend(env.PAS_NVIM_RTP)
vim.opt.swapfile = false
vim.cmd("runtime! plugin/pas.lua") -- plugins load after -u init; the flow runs inside it

local log = {}
function M.say(msg)
  table.insert(log, msg)
  vim.fn.writefile(log, env.PAS_TEST_LOG)
end

function M.wait(ms, what, cond)
  if not vim.wait(ms, cond, 20) then
    error("timed out waiting for " .. what)
  end
end

--- The plugin, set up to start pas-lsp from this checkout with these model choices (and options).
function M.pas(models, opts)
  local pas = require("pas")
  pas.setup(vim.tbl_extend("force", { cmd = { env.PAS_PYTHON, "-m", "pas_lsp" }, models = models }, opts or {}))
  return pas
end

--- Open the test's file and wait until pas-lsp has attached to it and reported the pool; its buffer.
function M.open(pas)
  vim.cmd("edit " .. vim.fn.fnameescape(env.PAS_TEST_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  M.wait(20000, "pas-lsp to attach", function()
    local c = pas.client(bufnr)
    return c ~= nil and c.initialized ~= false and pas.status ~= nil
  end)
  return bufnr
end

function M.run(flow)
  local ok, err = xpcall(flow, debug.traceback)
  if not ok then
    M.say("FAILED: " .. tostring(err))
    vim.cmd("cq")
  end
  vim.cmd("qa!")
end

return M
