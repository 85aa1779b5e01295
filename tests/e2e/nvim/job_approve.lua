-- Headless Neovim flow, driven by tests/e2e/test_nvim.py through environment variables:
-- :PasJob on a folder of two files, answer the instruction prompt, wait until both of the job's
-- tasks are in review, open one file, see its review diagnostic, :PasApprove there. Only that
-- file's buffer changes. Exits 0 on success, :cq (1) on failure.
local env = vim.env
local flow = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/flow.lua")
local say, wait = flow.say, flow.wait

local function run()
  local pas = flow.pas({ "openai/pasd-offline" })
  local folder = env.PAS_TEST_FOLDER
  local first, second = folder .. "/a.py", folder .. "/b.py"
  vim.cmd("edit " .. vim.fn.fnameescape(first))
  local bufnr = vim.api.nvim_get_current_buf()
  wait(20000, "pas-lsp to attach", function()
    return pas.client(bufnr) ~= nil and pas.status ~= nil
  end)

  local messages = {}
  local notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(messages, msg)
    return notify(msg, level, opts)
  end
  vim.ui.input = function(_, on_confirm)
    on_confirm("note the job")
  end
  vim.cmd("PasJob " .. vim.fn.fnameescape(folder))
  wait(20000, "the job to be queued", function()
    for _, m in ipairs(messages) do
      if m:match("job %w+ queued: 2 task%(s%)") then
        return true
      end
    end
    return false
  end)
  say("queued: " .. table.concat(messages, " | "))

  local tasks, asked = nil, 0
  wait(90000, "both tasks of the job in review", function()
    if vim.loop.now() - asked > 300 then
      asked = vim.loop.now()
      pas.execute("pas.tasks", { states = { "REVIEW" } }, function(result)
        tasks = result.tasks
      end, bufnr)
    end
    return tasks ~= nil and #tasks == 2
  end)
  assert(tasks[1].job ~= nil and tasks[1].job == tasks[2].job, "the two tasks are not of one job")
  say("in review: job " .. tasks[1].job .. ", tasks " .. tasks[1].id .. " " .. tasks[2].id)

  wait(20000, "the review diagnostic in a.py", function()
    return #vim.diagnostic.get(bufnr) > 0
  end)
  vim.cmd("PasApprove")
  wait(20000, "the approved text in a.py's buffer", function()
    return vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1] == "# pas: note the job"
  end)
  vim.cmd("write")

  vim.cmd("edit " .. vim.fn.fnameescape(second))
  local other = vim.api.nvim_get_current_buf()
  wait(20000, "the review diagnostic in b.py", function()
    return #vim.diagnostic.get(other) > 0
  end)
  assert(vim.api.nvim_buf_get_lines(other, 0, 1, false)[1] == "def b():", "b.py changed before its approval")
  say("ok")
end

flow.run(run)
