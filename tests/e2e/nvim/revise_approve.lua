-- Headless Neovim flow, driven by tests/e2e/test_nvim.py: delegate, then the "Revise…" code lens
-- on the hunk (the client-side pas.promptRevise asks with vim.ui.input), wait until the revised
-- proposal is in review, :PasApprove, check the buffer holds both rounds. Exits 0 on success.
local flow = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/flow.lua")
local say, wait = flow.say, flow.wait

local function run()
  local pas = flow.pas({ "openai/pasd-offline" })
  local bufnr = flow.open(pas)
  local client = pas.client(bufnr)
  local answers = { "explain add", "name the return type" }
  vim.ui.input = function(_, on_confirm)
    on_confirm(table.remove(answers, 1))
  end
  pas.delegate({ range = { 1, 2 } })
  wait(60000, "the review diagnostic", function()
    return #vim.diagnostic.get(bufnr) > 0
  end)
  local task = vim.diagnostic.get(bufnr)[1].message:match("^PAS task (%w+) hunk")
  assert(task, "no task id in " .. vim.diagnostic.get(bufnr)[1].message)

  local resp = client.request_sync("textDocument/codeLens", { textDocument = { uri = vim.uri_from_bufnr(bufnr) } },
    10000, bufnr)
  assert(resp and not resp.err, "codeLens failed: " .. vim.inspect(resp))
  local lens
  for _, l in ipairs(resp.result) do
    if l.command and l.command.title == "Revise…" then
      lens = l
    end
  end
  assert(lens and lens.command.command == "pas.promptRevise", "no Revise… lens: " .. vim.inspect(resp.result))
  -- Run the lens's command as Neovim does: a client-side command from vim.lsp.commands.
  vim.lsp.commands[lens.command.command](lens.command, { bufnr = bufnr, client_id = client.id })
  say("revise asked for task " .. tostring(task))

  -- the hunk of the revised proposal holds both comments: (+2 -0) where the first had (+1 -0)
  wait(60000, "the revised proposal in review", function()
    local d = vim.diagnostic.get(bufnr)[1]
    return #answers == 0 and d ~= nil and d.message:find("(+2 -0)", 1, true) ~= nil
  end)
  vim.cmd("PasApprove " .. task)
  wait(20000, "both rounds in the buffer", function()
    local lines = vim.api.nvim_buf_get_lines(bufnr, 0, 2, false)
    return lines[1] == "# pas: name the return type" and lines[2] == "# pas: explain add"
  end)
  say("ok")
end

flow.run(run)
