-- Headless Neovim flow, driven by tests/e2e/test_nvim.py: delegate a task the offline model answers
-- without an edit, then one whose edit of another file is refused: the failure reaches vim.notify as an
-- error with its reason, the flagged review as a warning (Neovim 0.7 itself would only echo a warning).
local flow = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/flow.lua")
local say, wait = flow.say, flow.wait

local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end

local function run()
  local pas = flow.pas({ "openai/pasd-offline" })
  local bufnr = flow.open(pas)
  vim.ui.input = function(_, on_confirm)
    on_confirm("leave add alone")
  end
  vim.cmd("PasDelegate")
  local failed
  wait(60000, "a notification of the failure", function()
    for _, n in ipairs(notes) do
      if n.msg:find(" failed: ", 1, true) then
        failed = n
        return true
      end
    end
    return false
  end)
  say("notified: " .. failed.msg)
  assert(failed.level == vim.log.levels.ERROR, "expected an error, got level " .. tostring(failed.level))

  vim.cmd("PasDelegate")
  local flagged
  wait(60000, "a notification of the flagged review", function()
    for _, n in ipairs(notes) do
      if n.msg:find(" is in review, but flagged: ", 1, true) then
        flagged = n
        return true
      end
    end
    return false
  end)
  say("flagged: " .. flagged.msg)
  assert(flagged.level == vim.log.levels.WARN, "expected a warning, got level " .. tostring(flagged.level))
  say("ok")
end

flow.run(run)
