-- Headless Neovim flow, driven by tests/e2e/test_nvim.py through environment variables:
-- open a file, list code actions, delegate via the code action's client-side command, wait for
-- the review diagnostic, :PasApprove, check the buffer. Exits 0 on success, :cq (1) on failure.
local flow = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":h") .. "/flow.lua")
local say, wait = flow.say, flow.wait

local function run()
  local pas = flow.pas({ "openai/pasd-offline", "openai/pasd-offline-b" })
  local bufnr = flow.open(pas)
  say("attached; daemon " .. pas.status.daemon .. (vim.lsp.start and " (vim.lsp.start)" or " (start_client)"))
  local client = pas.client(bufnr)

  -- Code actions for lines 1-2.
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = 0, character = 0 }, ["end"] = { line = 2, character = 0 } },
    context = { diagnostics = {} },
  }
  local resp = client.request_sync("textDocument/codeAction", params, 10000, bufnr)
  assert(resp and not resp.err, "codeAction failed: " .. vim.inspect(resp))
  local titles, chosen = {}, nil
  for _, a in ipairs(resp.result) do
    table.insert(titles, a.title)
    if a.title == "PAS: delegate selection to openai/pasd-offline" then
      chosen = a
    end
  end
  say("actions: " .. table.concat(titles, " | "))
  assert(chosen, "no delegate action for the offline model")
  assert(chosen.command.command == "pas.promptDelegate", "expected the client-side prompt command")

  -- Run the action's command as Neovim would: through vim.lsp.commands, answering the prompt.
  vim.ui.input = function(_, on_confirm)
    on_confirm("explain add")
  end
  vim.lsp.commands[chosen.command.command](chosen.command, { bufnr = bufnr, client_id = client.id })

  wait(60000, "the review diagnostic", function()
    return #vim.diagnostic.get(bufnr) > 0
  end)
  local d = vim.diagnostic.get(bufnr)[1]
  say("diagnostic at line " .. d.lnum .. ": " .. d.message)
  assert(d.lnum == 0, "diagnostic on the wrong line: " .. d.lnum)

  vim.cmd("PasApprove")
  wait(20000, "the approved text in the buffer", function()
    return vim.api.nvim_buf_get_lines(bufnr, 0, 1, false)[1] == "# pas: explain add"
  end)
  wait(20000, "the diagnostics to clear", function()
    return #vim.diagnostic.get(bufnr) == 0
  end)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  say("buffer: " .. table.concat(lines, "\\n"))
  assert(vim.bo[bufnr].modified, "approve should change the buffer, not the file")
  vim.cmd("write")
  say("ok")
end

flow.run(run)
