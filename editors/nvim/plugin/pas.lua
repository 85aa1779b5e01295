-- PAS user commands; `require("pas").setup({...})` starts pas-lsp for buffers.
if vim.g.loaded_pas then
  return
end
vim.g.loaded_pas = true

local function pas()
  return require("pas")
end

vim.api.nvim_create_user_command("PasDelegate", function(o)
  pas().delegate({ model = o.args ~= "" and o.args or nil, range = o.range > 0 and { o.line1, o.line2 } or nil,
                   pick = o.bang })
end, { nargs = "?", range = true, bang = true,
       desc = "PAS: delegate the selection (or the file) with an instruction; ! picks the model and engine" })
vim.api.nvim_create_user_command("PasJob", function(o)
  pas().delegate_job(o.fargs)
end, { nargs = "*", complete = "file", desc = "PAS: delegate files and folders (default: this file's folder) as a job" })
vim.api.nvim_create_user_command("PasApprove", function(o)
  pas().review("approve", o.args ~= "" and o.args or nil)
end, { nargs = "?", desc = "PAS: approve a task in review" })
vim.api.nvim_create_user_command("PasReject", function(o)
  pas().review("reject", o.args ~= "" and o.args or nil)
end, { nargs = "?", desc = "PAS: reject a task in review" })
vim.api.nvim_create_user_command("PasRevise", function(o)
  pas().revise(o.args ~= "" and o.args or nil)
end, { nargs = "?", desc = "PAS: send a task in review back with a comment" })
vim.api.nvim_create_user_command("PasDiff", function(o)
  pas().diff(o.args ~= "" and o.args or nil)
end, { nargs = "?", desc = "PAS: open a task's diff" })
vim.api.nvim_create_user_command("PasStatus", function()
  pas().show_status()
end, { desc = "PAS: the pool's Programmers" })
